"""The admin's digest preview of one subscriber: what they would get now, what they got today,
and why nothing can be shown (digest/composing.py editor_preview, digest/admin.py)."""

from datetime import date, timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from digest.delivery import composing, rounds
from digest.models import Delivery, Paper
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def make_paper(title: str, abstract: str, *, ago: timedelta = timedelta(minutes=30)) -> Paper:
    seen = timezone.now() - ago
    return Paper.objects.create(
        title=title, title_key=title.lower(), abstract=abstract, first_seen=seen, last_seen=seen
    )


@pytest.fixture
def reader() -> Subscriber:
    make_paper(
        "Sparse Mixture of Experts at Scale",
        "We train a mixture of experts model. It routes tokens to experts.",
    )
    # Due from midnight UTC: whenever the test runs, today's digest is due.
    return Subscriber.objects.create(
        email="ada@example.com",
        topics="mixture of experts",
        status=Subscriber.Status.ACTIVE,
        send_hour=0,
        time_zone="UTC",
    )


def preview_page(client, subscriber: Subscriber) -> tuple[int, str]:
    """The status and the page's text as the editor reads it (tags dropped, spaces collapsed)."""
    response = client.get(reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]))
    return response.status_code, " ".join(unescape(strip_tags(response.content.decode())).split())


def html_part(client, subscriber: Subscriber) -> str:
    response = client.get(reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]))
    return response.context["email"].html


def test_preview_of_a_reader_served_today_says_already_sent_today(admin_client, reader):
    rounds.run_digest_round(timezone.now())
    delivery = Delivery.objects.get(status=Delivery.Status.SENT)

    status, page = preview_page(admin_client, reader)

    assert status == 200
    assert "Already sent today: 1 paper at" in page
    assert ": Sparse Mixture of Experts at Scale. No second digest goes out today." in page
    html = admin_client.get(
        reverse("admin:subscriptions_subscriber_preview", args=[reader.pk])
    ).content.decode()
    assert reverse("admin:digest_delivery_change", args=[delivery.pk]) in html
    assert "Nothing relevant" not in page and "no digest would be sent" not in page
    assert "Nothing new for ada@example.com since today's digest." in page


def test_preview_of_a_reader_served_today_still_shows_what_arrived_since(admin_client, reader):
    rounds.run_digest_round(timezone.now())
    make_paper(
        "Routing Tokens to Experts",
        "A mixture of experts router for language models.",
        ago=timedelta(0),  # ingested after today's digest was planned
    )

    status, page = preview_page(admin_client, reader)

    assert "Already sent today: 1 paper at" in page
    assert "below is what the next one would hold if it went now" in page
    assert "Routing Tokens to Experts" in html_part(admin_client, reader)


def test_preview_shows_a_ranking_error_instead_of_a_500(admin_client, reader, monkeypatch):
    def select_papers(subscribers, *, now):
        raise IndexError("list index out of range")

    monkeypatch.setattr(composing, "select_papers", select_papers)

    status, page = preview_page(admin_client, reader)

    assert status == 200
    assert (
        "This reader's digest cannot be previewed: ranking failed: IndexError: "
        "list index out of range" in page
    )


def test_preview_shows_a_composing_error_instead_of_a_500(admin_client, reader, monkeypatch):
    def compose_digest(subscriber, matches, **kwargs):
        raise KeyError("digest-item.html")

    monkeypatch.setattr(composing, "compose_digest", compose_digest)

    status, page = preview_page(admin_client, reader)

    assert status == 200
    assert "cannot be previewed: composing failed: KeyError: 'digest-item.html'" in page


def test_preview_says_when_todays_digest_failed_and_why(admin_client, reader):
    Delivery.objects.create(
        subscriber=reader,
        period=timezone.now().date(),
        status=Delivery.Status.FAILED,
        error="ranking failed: ValueError: boom",
    )

    status, page = preview_page(admin_client, reader)

    assert "Today's digest failed: ranking failed: ValueError: boom" in page


def test_a_delivery_of_another_day_is_not_today(admin_client, reader):
    old = Delivery.objects.create(subscriber=reader, period=date(2020, 1, 1), status="sent")
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))

    status, page = preview_page(admin_client, reader)

    assert "Already sent today" not in page
    assert "Sparse Mixture of Experts at Scale" in html_part(admin_client, reader)
