"""send_digests from cron, without beat: a rerun after any kill finishes the day
(digest/sending.py left_over_deliveries, the send_digests command)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from digest import sending
from digest.models import Delivery, Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def due() -> list[Subscriber]:
    Paper.objects.create(
        title="Sparse Mixture of Experts at Scale",
        title_key="sparse mixture of experts at scale",
        abstract="We train a mixture of experts model.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    return [
        Subscriber.objects.create(
            email=f"reader{n}@example.com",
            topics="mixture of experts",
            status=Subscriber.Status.ACTIVE,
            send_hour=7,
        )
        for n in range(3)
    ]


def sent_to(outbox) -> list[str]:
    return sorted(str(message["To"]) for message in read_outbox(outbox))


def test_a_rerun_sends_what_a_killed_run_planned_but_never_queued(due, outbox):
    sending.plan_deliveries(NOW)  # killed right after planning committed

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert sent_to(outbox) == [s.email for s in due]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_a_rerun_takes_over_claims_older_than_the_claim_timeout(due, outbox, settings, capsys):
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    ids = sending.queue_run(sending.plan_deliveries(NOW))
    # Killed mid-chunk: all three claimed, none sent; one claim is fresh (another process may
    # still be sending it), two are older than the timeout.
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.SENDING, claimed_at=timezone.now() - timedelta(seconds=61)
    )
    Delivery.objects.filter(pk=ids[0]).update(claimed_at=timezone.now())

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert sent_to(outbox) == [due[1].email, due[2].email]
    assert "1 being sent by another process" in capsys.readouterr().out
    assert Delivery.objects.get(pk=ids[0]).status == Delivery.Status.SENDING


def test_a_retry_not_yet_due_is_not_sent_early_by_a_rerun(due, outbox):
    ids = sending.queue_run(sending.plan_deliveries(NOW))
    Delivery.objects.filter(pk__in=ids).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert read_outbox(outbox) == []
