"""A whole round in one process: the beat task, the send_digests command, the demo."""

import smtplib
from datetime import UTC, datetime, timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.utils import timezone

from digest.delivery import rounds
from digest.models import Delivery, DigestRun, Paper
from subscriptions.models import Subscriber
from tests.conftest import PROJECT_DIR, read_outbox
from tests.digest.delivery.delivery_records import (
    NOW,
    make_subscriber,
    sent_to,
)

pytestmark = pytest.mark.django_db


def test_plan_and_send_task_sends_everything_due(papers, outbox, monkeypatch):
    from config.celery import app
    from digest.tasks import plan_and_send

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # in-process, even with a broker
    make_subscriber("ada@example.com")
    plan_and_send.delay(NOW.isoformat())

    assert sent_to(outbox) == ["ada@example.com"]
    assert DigestRun.objects.get().sent == 1


def test_dry_run_composes_but_sends_and_records_nothing(papers, outbox, capsys):
    make_subscriber("ada@example.com")

    call_command("send_digests", "--now", NOW.isoformat(), "--dry-run")

    assert read_outbox(outbox) == []
    assert Delivery.objects.count() == 0 and DigestRun.objects.count() == 0
    assert "would send 1" in capsys.readouterr().out


def test_send_digests_prints_who_got_what(papers, outbox, capsys):
    make_subscriber("ada@example.com")
    make_subscriber("bob@example.com", "volcanology")

    call_command("send_digests", "--now", "2026-03-02T09:30:00+00:00")

    out = capsys.readouterr().out
    assert "ada@example.com" in out and "Sparse Mixture of Experts at Scale" in out
    assert "sent 1, skipped 1" in out
    assert sent_to(outbox) == ["ada@example.com"]


class FailsFirstTime(BaseEmailBackend):
    """Turns each address away once with a temporary error, then takes its messages."""

    turned_away: set[str] = set()
    delivered: list[str] = []

    def send_messages(self, messages) -> int:
        for message in messages:
            if message.to[0] not in self.turned_away:
                self.turned_away.add(message.to[0])
                raise smtplib.SMTPServerDisconnected("try again later")
            self.delivered.append(message.to[0])
        return len(messages)


def test_send_digests_says_what_waits_for_a_retry_and_sends_it_once_due(
    papers, settings, monkeypatch, capsys
):
    settings.EMAIL_BACKEND = f"{__name__}.FailsFirstTime"
    monkeypatch.setattr(FailsFirstTime, "turned_away", set())
    monkeypatch.setattr(FailsFirstTime, "delivered", [])
    make_subscriber("ada@example.com")

    call_command("send_digests", "--now", "2026-03-02T09:30:00+00:00")
    first = capsys.readouterr().out
    call_command("send_digests", "--now", "2026-03-02T09:35:00+00:00")  # retry not due yet
    too_early, delivered_too_early = capsys.readouterr().out, list(FailsFirstTime.delivered)
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    call_command("send_digests", "--now", "2026-03-02T09:40:00+00:00")
    due = capsys.readouterr().out

    assert "sent 0," in first and "1 waiting to retry" in first
    assert "1 waiting to retry" in too_early and delivered_too_early == []
    assert "also sent 1 retried from earlier rounds" in due and "waiting" not in due
    assert FailsFirstTime.delivered == ["ada@example.com"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


@pytest.mark.parametrize("hour", [0, 6, 13, 23])
def test_every_sample_reader_gets_a_digest_whatever_the_hour_the_demo_runs(hour, outbox):
    call_command("ingest", *sorted(str(p) for p in (PROJECT_DIR / "samples/dumps").glob("*.txt")))
    call_command("import_subscribers", str(PROJECT_DIR / "samples" / "subscribers.csv"))
    now = datetime(2026, 3, 2, hour, 15, tzinfo=UTC)
    Paper.objects.update(first_seen=now - timedelta(minutes=10))

    run = rounds.run_digest_round(now)

    readers = set(Subscriber.objects.values_list("email", flat=True))
    assert {email["To"] for email in read_outbox(outbox)} == readers
    assert run.sent == 6 and all(row.papers >= 3 for row in run.report)
