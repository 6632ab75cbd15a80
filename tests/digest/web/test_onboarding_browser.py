"""A new reader previews their digest, ticks three papers, signs up, confirms from the email,
and their first digest leads with papers close to those ticks (on the real shipped model).
Screenshots at 390 and 1280 px go to screenshots/."""

import re
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from config.celery import app as celery_app
from digest.ingest.records import title_key
from digest.matching.semantic import embed_texts
from digest.models import Paper, Rating
from digest.web.home import forget_home_page
from subscriptions.models import Subscriber
from subscriptions.send_times import next_send_time
from tests.conftest import read_outbox
from tests.subscriptions.test_browser import SIZES, paperboy_link, shoot

pytestmark = pytest.mark.browser

PROTEIN = [
    ("Learning protein structure from sequence", "A deep learning model predicts the folded "
     "structure of proteins from their amino acid sequence.", 20),
    ("Protein folding dynamics learned from simulations", "Learning how proteins fold from "
     "molecular dynamics trajectories of their residues.", 15),
    ("Learning enzyme function from protein language models", "Protein language models "
     "learned on millions of sequences predict what enzymes catalyse.", 12),
    ("Learning to design protein binders", "Generative learning designs amino acid sequences "
     "whose folded proteins bind a chosen target.", 10),
]  # fmt: skip
PROTEIN_IN_OTHER_WORDS = [
    ("Predicting residue contacts in folded polypeptides", "Pairwise distances between amino "
     "acids of a polypeptide chain are inferred from evolutionary couplings.", 5),
    ("Antibody structure modelling at scale", "We model the three-dimensional shape of "
     "antibodies and their binding loops from sequence.", 4),
]  # fmt: skip
OTHERS = [
    ("Learning to grasp with tactile robots", "Robots learning to grasp objects from touch "
     "sensors in cluttered bins.", 300),
    ("Streaming speech recognition learned end to end", "Learning transducers recognise "
     "spoken language from audio streams with low latency.", 250),
    ("Learning galaxy morphology from survey images", "Deep learning sorts galaxies from "
     "telescope survey images by shape.", 200),
    ("Reinforcement learning for traffic lights", "Learning signal timings for city "
     "intersections reduces waiting cars.", 180),
]  # fmt: skip


def add_papers(rows, *, hours_ago: float) -> None:
    seen = timezone.now() - timedelta(hours=hours_ago)
    for title, abstract, upvotes in rows:
        Paper.objects.create(
            title=title, title_key=title_key(title), abstract=abstract, upvotes=upvotes,
            first_seen=seen, last_seen=seen, arxiv_id=f"2611.{Paper.objects.count():05d}",
            authors=["Ada Lovelace", "Grace Hopper"], sources=["daily-json"],
        )  # fmt: skip


def digest_titles(text: str) -> list[str]:
    return re.findall(r"^\s*\d+\. (.+)$", text, flags=re.MULTILINE)


def test_ticked_papers_lead_the_first_digest(
    browser, live_server, settings, outbox, transactional_db, monkeypatch
):
    settings.SITE_URL = live_server.url
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # emails, profile, vectors
    forget_home_page()
    add_papers(PROTEIN + OTHERS, hours_ago=30)
    add_papers(PROTEIN_IN_OTHER_WORDS, hours_ago=3)
    call_command("embed_papers", stdout=StringIO())
    hour = timezone.now().hour

    context = browser.new_context(viewport=SIZES["phone"], timezone_id="UTC")
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.fill("input[name=email]", "newreader@example.org")
    page.locator("textarea[name=topics]").press_sequentially("learning")
    expect(page.locator("#preview ol.papers li")).to_have_count(8, timeout=15_000)
    ticked = [title for title, _, _ in PROTEIN[:3]]
    for title in ticked:
        # By its accessible name, as a screen reader announces it.
        page.get_by_role("checkbox", name=f"More like this: {title}").check()
    page.locator("input[name=like]").first.focus()  # the focus ring shows in the screenshot
    shoot(page, "30-onboarding-ticks")
    page.select_option("select[name=send_hour]", str(hour))
    page.click("button[type=submit]:not([value=preview])")
    expect(page.locator("h1")).to_have_text("Check your inbox")

    page.goto(paperboy_link(outbox, "confirm"))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("You're subscribed")
    listed = page.locator("ul.ticked-papers li").all_inner_texts()
    assert sorted(listed) == sorted(ticked)
    shoot(page, "31-onboarding-confirmed")
    context.close()

    reader = Subscriber.objects.get(email="newreader@example.org")
    assert reader.status == Subscriber.Status.ACTIVE
    assert Rating.objects.filter(subscriber=reader, source=Rating.Source.SIGN_UP).count() == 3

    # The first digest comes at the send time the confirmation page promised.
    promised = next_send_time(reader, reader.digests_from or timezone.now())
    call_command("send_digests", "--now", promised.isoformat(), stdout=StringIO())
    digest = read_outbox(outbox)[-1]
    assert digest["Subject"] and "/confirm/" not in digest.get_body(("plain",)).get_content()
    titles = digest_titles(digest.get_body(("plain",)).get_content())
    assert not set(ticked) & set(titles)  # the ticks themselves are not sent back
    # The two protein papers that never say "learning" match no topic: only the ticks bring
    # them, and ahead of the "learning" papers on robots, speech, galaxies and traffic.
    assert set(titles[:3]) == {PROTEIN[3][0], *(title for title, _, _ in PROTEIN_IN_OTHER_WORDS)}
    assert set(titles[3:]) == {title for title, _, _ in OTHERS}
    # And close in meaning: each leading paper is nearer the ticks' mean than any other paper.
    vectors = embed_texts([*ticked, *titles])
    mean = vectors[:3].mean(axis=0)
    closeness = vectors[3:] @ mean
    assert np.all(closeness[:3] > closeness[3:].max())
