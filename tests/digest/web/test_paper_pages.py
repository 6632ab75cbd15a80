"""Where a paper page sends its reader: only http(s) links become an href, whatever the feed
said or the database holds (digest/web/paper_pages.py)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest.records import title_key
from digest.models import Paper
from digest.web.paper_pages import links_out
from tests.unicode_text import any_text

HOSTILE_LINKS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "//evil.example/x.pdf",
    "http:javascript:alert(1)",
    "https://",
]


def stored_paper(**fields) -> Paper:
    """A row written straight to the database, as one stored before links were checked."""
    now = timezone.now()
    fields.setdefault("title", "Sparse experts")
    return Paper.objects.create(
        title_key=title_key(fields["title"]),
        first_seen=now - timedelta(hours=1),
        last_seen=now,
        **fields,
    )


def hrefs(page: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', page)


@pytest.mark.django_db
@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_a_hostile_pdf_link_in_the_database_is_not_rendered_as_an_href(client, link):
    paper = stored_paper(pdf_url=link, url=link)

    page = client.get(f"/papers/{paper.pk}/").content.decode()

    links = [href for href in hrefs(page) if not href.startswith(("/", "#"))]
    assert links == ["https://arxiv.org/search/?searchtype=title&amp;query=Sparse+experts"], links


@pytest.mark.django_db
def test_an_arxiv_paper_with_a_hostile_pdf_link_gets_the_arxiv_pdf_instead(client):
    paper = stored_paper(arxiv_id="2401.00001", pdf_url="javascript:alert(1)")

    page = client.get(f"/papers/{paper.pk}/").content.decode()

    assert 'href="https://arxiv.org/pdf/2401.00001"' in page
    assert "javascript:" not in page


@pytest.mark.django_db
def test_http_and_https_links_from_the_source_are_kept(client):
    paper = stored_paper(url="http://example.org/paper", pdf_url="HTTPS://example.org/p.pdf")

    page = client.get(f"/papers/{paper.pk}/").content.decode()

    assert 'href="http://example.org/paper"' in page
    assert 'href="HTTPS://example.org/p.pdf"' in page


@settings(max_examples=200, deadline=None)
@given(url=any_text, pdf_url=any_text, arxiv=st.sampled_from(["", "2401.00001"]))
def test_links_out_of_any_stored_links_are_all_http(url, pdf_url, arxiv):
    paper = Paper(title="A title", url=url, pdf_url=pdf_url, arxiv_id=arxiv or None)

    for _label, link in links_out(paper):
        assert re.match(r"https?://", link, re.IGNORECASE)
