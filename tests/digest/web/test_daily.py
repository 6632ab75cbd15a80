"""/today/, /archive/ and /archive/YYYY-MM-DD/: every visible paper of a day, by upvotes."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from xml.etree import ElementTree

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings

from digest.models import Paper
from digest.web.daily import showable
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"
MARCH_2 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def paper(title: str, *, seen: datetime = MARCH_2, upvotes: int = 0, **fields) -> Paper:
    return Paper.objects.create(
        title=title, title_key=title.lower(), upvotes=upvotes, first_seen=seen, last_seen=seen,
        **fields,
    )  # fmt: skip


def titles_in(html: str) -> list[str]:
    found = re.findall(r'<h3><a href="/papers/\d+/">([^<]*)</a></h3>', html)
    return [unescape(title) for title in found]


def test_today_lists_the_newest_days_papers_by_upvotes_with_authors_and_upvotes(client):
    now = timezone.now()
    paper("Yesterday's star", seen=now - timedelta(days=1), upvotes=900)
    paper("Quiet", seen=now, upvotes=3, authors=["A. Lovelace", "C. Babbage", "G. Hopper", "Z"])
    paper("Loud", seen=now, upvotes=90, arxiv_id="2603.00001")
    paper("Hidden", seen=now, upvotes=999, hidden=True)

    response = client.get("/today/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Today's papers</h1>" in html
    assert titles_in(html) == ["Loud", "Quiet"]
    assert "▲ 90" in html and "A. Lovelace, C. Babbage, G. Hopper et al." in html
    assert 'href="https://arxiv.org/abs/2603.00001"' in html
    earlier = (now - timedelta(days=1)).date().isoformat()
    assert f'href="/archive/{earlier}/" rel="prev"' in html


def test_today_before_the_listing_is_in_shows_the_latest_day_and_says_so(client):
    paper("Last week's", seen=timezone.now() - timedelta(days=6))

    html = client.get("/today/").content.decode()

    assert "<h1>The latest papers</h1>" in html and "not in yet" in html
    assert titles_in(html) == ["Last week's"]


def test_today_without_any_paper_is_an_empty_page_not_an_error(client):
    response = client.get("/today/")

    assert response.status_code == 200
    assert "No papers yet" in response.content.decode()


def test_archive_day_shows_that_days_papers_and_links_to_the_days_around(client):
    paper("First of March", seen=MARCH_2 - timedelta(days=1))
    paper("Second of March", seen=MARCH_2, upvotes=5)
    paper("Fifth of March", seen=MARCH_2 + timedelta(days=3))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/archive/2026-03-02/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Papers of Monday 2 March 2026" in html
    assert titles_in(html) == ["Second of March"]
    assert 'href="/archive/2026-03-01/" rel="prev"' in html
    assert 'href="/archive/2026-03-05/" rel="next"' in html
    assert len(queries) <= 3  # the papers, the day before, the day after


def test_a_day_without_papers_is_a_404_that_still_leads_to_the_days_around(client):
    paper("Second of March", seen=MARCH_2)

    response = client.get("/archive/2026-03-04/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "No papers were listed on 4 March 2026" in html
    assert 'href="/archive/2026-03-02/" rel="prev"' in html


@pytest.mark.parametrize("path", ["/archive/2026-02-30/", "/archive/2026-3-2/", "/archive/x/"])
def test_a_date_that_does_not_exist_is_not_found(client, path):
    assert client.get(path).status_code == 404


def test_archive_lists_the_days_with_their_paper_counts(client):
    paper("One", seen=MARCH_2)
    paper("Two", seen=MARCH_2 + timedelta(hours=1))
    paper("Three", seen=MARCH_2 + timedelta(days=2))

    html = client.get("/archive/").content.decode()

    days = re.findall(
        r'<a href="/archive/([\d-]+)/">[^<]*</a> <span class="small">(\d+) paper', html
    )
    assert days == [("2026-03-04", "1"), ("2026-03-02", "2")]


def test_only_http_links_are_rendered_from_old_rows(client):
    paper("Old row", url="javascript:alert(1)", pdf_url="JAVASCRIPT:alert(2)")
    paper("Good row", url="https://example.org/paper", pdf_url="http://example.org/paper.pdf")

    html = client.get("/archive/2026-03-02/").content.decode()

    assert "javascript" not in html.lower()
    assert 'href="https://example.org/paper"' in html
    assert 'href="http://example.org/paper.pdf"' in html


@given(text=any_text)
def test_showable_text_has_nothing_xml_cannot_carry(text):
    shown = showable(text)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", shown)
    assert set(shown) <= set(text)


def storable(text: str) -> str:
    """What a database can hold: no lone surrogate (ingest turns them into U+FFFD), no NUL
    (PostgreSQL refuses it)."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text).replace("\x00", "")


@settings(max_examples=60, deadline=None)
@given(title=any_text, author=any_text, abstract=any_text)
def test_a_day_page_and_the_feed_show_any_text_a_paper_holds(title, author, abstract):
    client = Client()
    Paper.objects.all().delete()
    stored = paper(
        storable(title)[:1000] or "untitled",
        authors=[storable(author)],
        abstract=storable(abstract),
    )

    day = client.get("/archive/2026-03-02/")
    feed = client.get("/feed/")

    assert day.status_code == 200
    assert f'href="/papers/{stored.pk}/"' in day.content.decode()
    assert feed.status_code == 200
    [entry] = ElementTree.fromstring(feed.content).findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title").endswith("(▲ 0)")
