"""What a reader can choose instead of leaving: a pause (until they resume, or for a month), and
one digest a week instead of one a day."""

from datetime import datetime, timedelta

from django.utils import timezone

from subscriptions.models import Subscriber

PAUSE_FOR_A_MONTH = timedelta(days=30)


def pause(subscriber: Subscriber, *, until: datetime | None = None) -> None:
    """No digests until the reader resumes, or, given `until`, until then (see end_pauses)."""
    if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        subscriber.status = Subscriber.Status.PAUSED
        subscriber.paused_until = until
        subscriber.save(update_fields=["status", "paused_until", "updated_at"])


def pause_for_a_month(subscriber: Subscriber) -> None:
    pause(subscriber, until=timezone.now() + PAUSE_FOR_A_MONTH)


def resume(subscriber: Subscriber) -> None:
    if subscriber.status == Subscriber.Status.PAUSED:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.paused_until = None
        subscriber.save(update_fields=["status", "paused_until", "updated_at"])


def end_pauses(now: datetime) -> int:
    """Readers whose pause ended by `now` are active again; how many. (The digest planner already
    counts them in: subscriptions.selectors.)"""
    return Subscriber.objects.filter(status=Subscriber.Status.PAUSED, paused_until__lte=now).update(
        status=Subscriber.Status.ACTIVE, paused_until=None, updated_at=now
    )


def switch_to_weekly(subscriber: Subscriber, weekday: int) -> None:
    """One digest a week, on `weekday`, at the reader's usual hour, instead of one a day."""
    subscriber.frequency = Subscriber.Frequency.WEEKLY
    subscriber.weekday = weekday
    subscriber.save(update_fields=["frequency", "weekday", "updated_at"])
