"""When a reader's digests go out, as instants: the send time of a local day, and the first one
at or after a moment. The "You're subscribed" page promises the first digest at the latter, and
the planner (digest.delivery.periods) keeps that promise with the former."""

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from subscriptions.models import Subscriber

UTC = ZoneInfo("UTC")


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo:
    """The zone of that IANA name; UTC for a name this machine does not know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return UTC


def send_time_on(day: date, *, send_hour: int, zone: ZoneInfo) -> datetime:
    """The instant of `send_hour` on the local date `day`. An hour the clock skips (spring
    forward) is the instant of the jump; an hour it repeats (fall back), its first occurrence:
    zoneinfo reads a wall time with fold=0 in the offset before the change."""
    return datetime.combine(day, time(send_hour), tzinfo=zone)


def is_send_day(subscriber: Subscriber, day: date) -> bool:
    weekly = subscriber.frequency == Subscriber.Frequency.WEEKLY
    return not weekly or day.weekday() == subscriber.weekday


def next_send_time(subscriber: Subscriber, after: datetime) -> datetime:
    """The first of `subscriber`'s send times at or after the instant `after`, in their zone."""
    zone = zone_named(subscriber.time_zone)
    today = after.astimezone(zone).date()
    for offset in range(8):  # a weekly reader's day comes round within a week
        day = today + timedelta(days=offset)
        moment = send_time_on(day, send_hour=subscriber.send_hour, zone=zone)
        if is_send_day(subscriber, day) and moment >= after:
            return moment
    raise AssertionError("unreachable: a send day comes within eight days")  # pragma: no cover


def first_digest_text(subscriber: Subscriber, now: datetime) -> str:
    """When the first digest comes, as the reader reads it: "at 07:00 today", "at 07:00
    tomorrow", "on Monday 9 March at 07:00" (their zone, named by the page)."""
    zone = zone_named(subscriber.time_zone)
    moment = next_send_time(subscriber, subscriber.digests_from or now).astimezone(zone)
    days_ahead = (moment.date() - now.astimezone(zone).date()).days
    hour = f"{subscriber.send_hour:02d}:00"
    if days_ahead == 0:
        return f"at {hour} today"
    if days_ahead == 1:
        return f"at {hour} tomorrow"
    return f"on {moment:%A} {moment.day} {moment:%B} at {hour}"
