"""Planning rounds: one delivery per due reader and period, whatever the clock does."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from digest.delivery import planning, rounds, sending
from digest.delivery.sending import Outcome
from digest.models import DeliveredPaper, Delivery, DigestRun
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.digest.delivery.delivery_records import (
    NOW,
    ScriptedBackend,
    api_error,
    make_subscriber,
    sent_to,
    text_of,
)

pytestmark = pytest.mark.django_db


def test_round_sends_one_digest_per_due_subscriber_and_records_its_papers(papers, outbox):
    ada = make_subscriber("ada@example.com")
    grace = make_subscriber("grace@example.com", "quantization")

    run = rounds.run_digest_round(NOW)

    assert sent_to(outbox) == ["ada@example.com", "grace@example.com"]
    assert run.sent == 2 and run.finished_at is not None
    ada_papers = DeliveredPaper.objects.filter(delivery__subscriber=ada)
    assert [item.paper.title for item in ada_papers] == ["Sparse Mixture of Experts at Scale"]
    assert "mixture of experts" in ada_papers[0].why.lower()
    delivery = Delivery.objects.get(subscriber=grace)
    assert delivery.status == Delivery.Status.SENT and delivery.period == date(2026, 3, 2)
    email = next(e for e in read_outbox(outbox) if e["To"] == "grace@example.com")
    assert email["Message-ID"].strip() == delivery.message_id


def test_a_planned_delivery_keeps_every_field_of_its_matches(papers):
    ada = make_subscriber("ada@example.com", "mixture of experts\nquantization")
    expected = planning.select_papers([ada], now=NOW)[ada.pk]

    planning.plan_deliveries(NOW)

    stored = DeliveredPaper.objects.filter(delivery__subscriber=ada).order_by("position")
    fields = ["paper_id", "position", "score", "pinned", "topic", "matched_terms", "why"]
    assert [[getattr(item, name) for name in fields] for item in stored] == [
        [m.paper_id, n, m.score, m.pinned, m.topic, list(m.matched_terms), m.why]
        for n, m in enumerate(expected, start=1)
    ]
    assert len(expected) >= 2


def test_second_round_for_the_same_period_sends_nothing(papers, outbox):
    make_subscriber("ada@example.com")
    rounds.run_digest_round(NOW)
    rounds.run_digest_round(NOW + timedelta(hours=3))

    assert sent_to(outbox) == ["ada@example.com"]
    assert Delivery.objects.count() == 1


def test_subscriber_with_nothing_relevant_is_skipped_and_gets_no_email(papers, outbox):
    make_subscriber("ada@example.com", "volcanology")

    run = rounds.run_digest_round(NOW)

    assert read_outbox(outbox) == []
    assert run.skipped == 1
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_nobody_is_planned_before_their_local_send_hour(papers, outbox):
    make_subscriber("tokyo@example.com", send_hour=19, time_zone="Asia/Tokyo")  # 18:30 there
    make_subscriber("lima@example.com", send_hour=5, time_zone="America/Lima")  # 04:30 there

    rounds.run_digest_round(NOW)
    assert Delivery.objects.count() == 0

    rounds.run_digest_round(NOW + timedelta(hours=1))
    assert sent_to(outbox) == ["lima@example.com", "tokyo@example.com"]


def test_inactive_subscribers_get_nothing(papers, outbox):
    make_subscriber("paused@example.com")
    Subscriber.objects.update(status=Subscriber.Status.PAUSED)
    rounds.run_digest_round(NOW)
    assert Delivery.objects.count() == 0


def periods_planned_every_quarter_hour(start: datetime, hours: int) -> list[date]:
    for step in range(hours * 4):
        planning.plan_deliveries(start + timedelta(minutes=15 * step))
    return list(Delivery.objects.order_by("period").values_list("period", flat=True))


def test_spring_forward_day_neither_skipped_nor_doubled():
    # New York jumps from 02:00 to 03:00 on 8 March 2026: a 02:00 send hour does not exist.
    make_subscriber("ny@example.com", send_hour=2, time_zone="America/New_York")

    periods = periods_planned_every_quarter_hour(datetime(2026, 3, 7, 5, tzinfo=UTC), 72)

    assert periods == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    planned_at = DigestRun.objects.get(deliveries__period=date(2026, 3, 8)).now
    assert planned_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, right after the jump


def test_fall_back_day_neither_skipped_nor_doubled():
    # New York repeats 01:00-02:00 on 1 November 2026.
    make_subscriber("ny@example.com", send_hour=1, time_zone="America/New_York")

    periods = periods_planned_every_quarter_hour(datetime(2026, 10, 31, 4, tzinfo=UTC), 72)

    assert periods == [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]
    planned_at = DigestRun.objects.get(deliveries__period=date(2026, 11, 1)).now
    assert planned_at == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # the first 01:00 (EDT)


def test_weekly_subscriber_is_planned_only_on_their_weekday():
    make_subscriber(
        "weekly@example.com",
        frequency=Subscriber.Frequency.WEEKLY,
        weekday=Subscriber.Weekday.WEDNESDAY,
        time_zone="Europe/Berlin",
    )

    periods = periods_planned_every_quarter_hour(datetime(2026, 3, 1, 0, tzinfo=UTC), 24 * 14)

    assert periods == [date(2026, 3, 4), date(2026, 3, 11)]


def test_papers_of_a_digest_still_retrying_are_not_picked_again_the_next_day(papers, outbox):
    make_subscriber("ada@example.com")
    first_day = planning.queue_run(planning.plan_deliveries(NOW))
    busy = ScriptedBackend({"ada@example.com": api_error(503)})
    assert sending.send_deliveries(first_day, connection=busy)[first_day[0]].outcome == (
        Outcome.RETRY
    )

    next_day = planning.plan_deliveries(NOW + timedelta(days=1))
    Delivery.objects.filter(pk__in=first_day).update(next_attempt_at=timezone.now())  # retry due
    sending.send_deliveries(first_day + planning.queue_run(next_day))

    # The retried digest brings the paper; the next day's has nothing else to say.
    [email] = read_outbox(outbox)
    assert "Sparse Mixture of Experts at Scale" in text_of(email)
    assert list(Delivery.objects.order_by("period").values_list("status", flat=True)) == [
        Delivery.Status.SENT,
        Delivery.Status.SKIPPED,
    ]
    assert DeliveredPaper.objects.filter(delivery__subscriber__email="ada@example.com").count() == 1


def test_retry_failed_gives_failed_deliveries_new_attempts(planned):
    backend = ScriptedBackend({"ada@example.com": api_error(422)})
    sending.send_deliveries(planned, connection=backend)
    ada = Delivery.objects.get(subscriber__email="ada@example.com").pk

    assert planning.retry_failed([ada]) == 1
    assert sending.send_delivery(ada, connection=ScriptedBackend()).outcome == Outcome.SENT


def test_lost_queued_deliveries_are_queued_again(planned, settings):
    settings.DIGEST_REQUEUE_AFTER_SECONDS = 60
    assert planning.stalled_deliveries() == []
    Delivery.objects.update(
        created_at=timezone.now() - timedelta(minutes=5),
        next_attempt_at=timezone.now() - timedelta(minutes=2),
    )
    assert planning.stalled_deliveries() == planned
    assert planning.stalled_deliveries() == []  # queued again just now


def test_a_tick_with_nobody_due_leaves_no_run_behind(papers, capsys):
    make_subscriber("late@example.com", send_hour=23)

    call_command("send_digests", "--now", NOW.isoformat())

    assert DigestRun.objects.count() == 0 and Delivery.objects.count() == 0
    assert "Nobody is due" in capsys.readouterr().out
