"""A reader rates a paper from a real digest in a real browser, and their next digest changes.
Screenshots of the paper page and the rating page at 390 and 1280 px go to screenshots/."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from config.celery import app as celery_app
from digest.ingest.records import title_key
from digest.models import Paper, Rating, ReaderProfile
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.test_browser import SIZES, shoot

pytestmark = pytest.mark.browser

PAPERS = [
    ("Message passing graph neural networks for molecules", "Graph neural networks pass "
     "messages between atoms of molecules to predict molecular properties.", 120),
    ("Equivariant graph networks for molecular dynamics", "Equivariant message passing over "
     "atoms predicts forces in molecular dynamics simulations of molecules.", 40),
    ("Graph transformers for protein molecules", "We pass messages over molecular graphs of "
     "atoms with attention to predict properties of molecules.", 30),
    ("Streaming speech recognition with transducers", "Transducers recognise speech from audio "
     "streams with low latency for spoken language.", 80),
    ("Robot grasping from touch", "Robots grasp objects from tactile sensing in clutter.", 10),
]  # fmt: skip


def next_digest(email: str) -> list[dict]:
    out = StringIO()
    call_command("search_papers", "--subscriber", email, "--limit", "3", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_more_like_this_from_a_real_digest_changes_the_next_ranking(
    browser, live_server, settings, outbox, transactional_db, monkeypatch
):
    settings.SITE_URL = live_server.url
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # the profile task, in process

    def ingest(papers: list[tuple[str, str, int]], *, hours_ago: float) -> None:
        seen = timezone.now() - timedelta(hours=hours_ago)
        for title, abstract, upvotes in papers:
            Paper.objects.create(
                title=title, title_key=title_key(title), abstract=abstract, upvotes=upvotes,
                first_seen=seen, last_seen=seen, arxiv_id=f"2611.{Paper.objects.count():05d}",
                authors=["Ada Lovelace", "Charles Babbage"], sources=["daily-json"],
            )  # fmt: skip

    ingest([PAPERS[0], PAPERS[4]], hours_ago=2)
    reader = Subscriber.objects.create(
        email="reader@example.org",
        topics="graph networks",
        status=Subscriber.Status.ACTIVE,
        papers_per_digest=1,
        send_hour=0,
        time_zone="UTC",
    )
    call_command("send_digests", stdout=StringIO())
    [digest] = read_outbox(outbox)
    text = digest.get_body(("plain",)).get_content()
    assert "1. Message passing graph neural networks for molecules" in text
    more = re.search(r"^More like this: (\S+)$", text, flags=re.MULTILINE).group(1)
    ingest(PAPERS[1:4], hours_ago=0)  # the next listing, after the digest went out
    before = next_digest(reader.email)
    assert [row["title"] for row in before] == [PAPERS[1][0]]
    assert "Graph transformers for protein molecules" not in [row["title"] for row in before]

    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    html = digest.get_body(("html",)).get_content()
    paper_link = re.search(r'href="([^"]+/papers/\d+/for/[^"]+)"', html).group(1)
    page.goto(paper_link)
    assert page.locator("h1").inner_text() == PAPERS[0][0]
    assert page.locator("button:has-text('More like this')").count() == 1
    shoot(page, "20-paper-page")

    page.goto(more)
    assert page.locator("h1").inner_text() == "More like this?"
    assert not Rating.objects.exists()  # opening the link records nothing
    shoot(page, "21-rating-page")
    page.click("button:has-text('More like this')")
    assert page.locator("h1").inner_text() == "Noted: more like this"
    shoot(page, "22-rating-recorded")
    context.close()

    assert Rating.objects.get().value == 1
    assert ReaderProfile.objects.get(subscriber=reader).ratings_count == 1
    after = next_digest(reader.email)
    assert after != before
    liked = [row for row in after if "which you rated up" in row["why"]]
    assert "Graph transformers for protein molecules" in [row["title"] for row in liked]
