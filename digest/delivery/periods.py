"""When a subscriber is due a digest: the digest period is their local date of a scheduled day,
due from their local send hour until their local midnight.

Comparing the local hour with `>=` (not `==`) is what keeps daylight-saving days whole: on a
spring-forward day a send hour that does not exist is reached at the first hour after the jump,
and on a fall-back day the repeated hour finds the period's delivery already there.
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from subscriptions.models import Subscriber
from subscriptions.send_times import send_time_on, zone_named


def subscriber_zone(subscriber: Subscriber) -> ZoneInfo:
    return zone_named(subscriber.time_zone or "UTC")


def due_period(*, frequency: str, weekday: int, send_hour: int, local_now: datetime) -> date | None:
    """The period a subscriber is due for at `local_now` (their wall-clock time), or None."""
    if local_now.hour < send_hour:
        return None
    if frequency == Subscriber.Frequency.WEEKLY and local_now.weekday() != weekday:
        return None
    return local_now.date()


def digest_period(subscriber: Subscriber, now: datetime) -> date | None:
    """The local date `subscriber`'s digest is due for at the instant `now`, or None. A period
    whose send time came before the reader confirmed is not theirs: the confirmation page
    promised the first digest at the next send time (subscriptions.send_times)."""
    zone = subscriber_zone(subscriber)
    period = due_period(
        frequency=subscriber.frequency,
        weekday=subscriber.weekday,
        send_hour=subscriber.send_hour,
        local_now=now.astimezone(zone),
    )
    if period is None or subscriber.digests_from is None:
        return period
    starts = send_time_on(period, send_hour=subscriber.send_hour, zone=zone)
    return period if starts >= subscriber.digests_from else None
