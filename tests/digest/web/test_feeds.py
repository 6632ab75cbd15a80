"""/feed/: the Atom feed of the newest listing day's papers."""

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from digest.models import Paper

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def paper(title: str, *, seen: datetime, upvotes: int = 0, **fields) -> Paper:
    return Paper.objects.create(
        title=title, title_key=title.lower(), upvotes=upvotes, first_seen=seen, last_seen=seen,
        **fields,
    )  # fmt: skip


def test_feed_is_atom_with_the_newest_days_papers_their_authors_upvotes_and_first_seen(client):
    now = timezone.now().replace(microsecond=0)
    paper("Yesterday's", seen=now - timedelta(days=1), upvotes=500)
    loud = paper(
        "Sparse Mixture of Experts", seen=now, upvotes=42, authors=["A. Lovelace", "C. Babbage"],
        abstract="We route tokens.", arxiv_id="2603.00001",
    )  # fmt: skip
    paper("Quiet", seen=now - timedelta(minutes=5), upvotes=1, url="javascript:alert(1)")

    response = client.get("/feed/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.content)
    assert feed.findtext(f"{ATOM}title") == "Paperboy: today's trending research papers"
    entries = feed.findall(f"{ATOM}entry")
    assert [entry.findtext(f"{ATOM}title") for entry in entries] == [
        "Sparse Mixture of Experts (▲ 42)",
        "Quiet (▲ 1)",
    ]
    first = entries[0]
    assert first.find(f"{ATOM}link").get("href") == f"http://testserver/papers/{loud.pk}/"
    assert first.findtext(f"{ATOM}author/{ATOM}name") == "A. Lovelace, C. Babbage"
    published = datetime.fromisoformat(first.findtext(f"{ATOM}published"))
    assert published.astimezone(UTC) == now
    summary = first.findtext(f"{ATOM}summary")
    assert "▲ 42 upvotes · first seen" in summary and "We route tokens." in summary
    assert 'href="https://arxiv.org/abs/2603.00001"' in summary
    assert "javascript" not in response.content.decode().lower()


def test_feed_without_papers_is_an_empty_valid_feed(client):
    response = client.get("/feed/")

    assert response.status_code == 200
    assert ElementTree.fromstring(response.content).findall(f"{ATOM}entry") == []


def test_pages_announce_the_feed(client):
    html = client.get("/today/").content.decode()

    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="/feed/"' in html
