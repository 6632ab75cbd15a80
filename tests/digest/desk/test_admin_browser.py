"""The editor's desk in a real browser: log in, read the dashboard, preview a reader's digest.
Screenshots go to screenshots/ (git-ignored)."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from digest.delivery import rounds
from digest.ingest import ingest_sources
from digest.models import Delivery, Paper
from subscriptions.models import Subscriber
from tests.conftest import PROJECT_DIR, SCREENSHOTS

pytestmark = pytest.mark.browser


def a_fortnight_of_activity() -> Subscriber:
    """The sample dumps ingested, a few readers, and two weeks of sends; returns a new reader."""
    ingest_sources(sorted(str(p) for p in (PROJECT_DIR / "samples" / "dumps").glob("*.txt")))
    rng = random.Random(14)
    now = timezone.now()
    for paper in Paper.objects.all():  # spread the sightings over the fortnight for the chart
        paper.first_seen = now - timedelta(days=rng.randrange(14), hours=rng.randrange(3))
        paper.save(update_fields=["first_seen"])
    topics = ["mixture of experts", "reinforcement learning", "diffusion", "language models"]
    statuses = [Subscriber.Status.ACTIVE] * 8 + [
        Subscriber.Status.PENDING,
        Subscriber.Status.PENDING,
        Subscriber.Status.BOUNCED,
        Subscriber.Status.UNSUBSCRIBED,
    ]
    for n, status in enumerate(statuses):
        Subscriber.objects.create(
            email=f"reader{n}@example.org",
            status=status,
            topics="\n".join(rng.sample(topics, 2)),
            send_hour=0,
            confirmed_at=now if status == Subscriber.Status.ACTIVE else None,
        )
    rounds.run_digest_round(now)
    for delivery in Delivery.objects.filter(status=Delivery.Status.SENT):
        delivery.sent_at = now - timedelta(days=rng.randrange(14))
        delivery.save(update_fields=["sent_at"])
    return Subscriber.objects.create(  # joined after the round: nothing sent to them yet
        email="new.reader@example.org",
        status=Subscriber.Status.ACTIVE,
        topics="reinforcement learning\nmixture of experts",
        confirmed_at=now,
    )


def test_editor_reads_the_dashboard_and_previews_a_digest(
    browser, live_server, settings, transactional_db, django_user_model
):
    settings.SITE_URL = live_server.url
    reader = a_fortnight_of_activity()
    django_user_model.objects.create_superuser("editor", "editor@example.org", "a-long-passphrase")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})

    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", "editor")
    page.fill("input[name=password]", "a-long-passphrase")
    page.click("input[type=submit]")

    dashboard = page.locator("#paperboy-dashboard")
    assert "Active" in dashboard.inner_text()
    assert page.locator("svg[aria-label='Papers ingested per day'] rect").count() == 14
    assert page.locator("svg[aria-label='Digests sent per day'] rect").count() == 14
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/subscriptions/subscriber/{reader.pk}/change/")
    page.click("text=Preview digest")
    subject = page.locator(".preview-subject").inner_text()
    assert subject
    email = page.frame_locator("iframe.preview-html")
    assert email.locator("body").inner_text().strip()
    page.screenshot(path=str(SCREENSHOTS / "admin-digest-preview.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/digest/paper/?o=-3")
    assert page.locator("#result_list tbody tr").count() == 100
    page.screenshot(path=str(SCREENSHOTS / "admin-papers.png"))
    page.goto(f"{live_server.url}/admin/digest/ingestrun/")
    assert page.locator("button:has-text('Run an ingest now')").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "admin-ingest-runs.png"))
    page.close()
