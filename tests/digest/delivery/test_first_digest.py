"""The first digest comes when the "You're subscribed" page said it would, not earlier."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery import rounds
from digest.delivery.periods import digest_period
from digest.models import Delivery
from subscriptions.models import Subscriber
from subscriptions.send_times import next_send_time, zone_named
from tests.conftest import read_outbox
from tests.digest.delivery.delivery_records import make_paper
from tests.subscriptions.conftest import links_in, sign_up_data
from tests.unicode_text import any_text

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def emails_sent_in_process(monkeypatch):
    from config.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


class Clock:
    def __init__(self, monkeypatch) -> None:
        self.now = timezone.now()
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


def sign_up_and_confirm(client, outbox, clock: Clock, at: datetime, **form) -> str:
    """The reader signs up and presses the confirmation button at `at`; the page's text."""
    clock.set(at - timedelta(minutes=2))
    make_paper("Sparse Mixture of Experts", "A mixture of experts model.", seen=at)
    client.post("/subscribe/", sign_up_data(**form))
    token = next(token for purpose, token in links_in(outbox) if purpose == "confirm")
    clock.set(at)
    page = client.post(reverse("subscriptions:confirm", kwargs={"token": token}))
    assert page.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.content.decode()))


def digests_at(clock: Clock, outbox, moment: datetime) -> int:
    """Run the planner's round at `moment` (as beat does every 5 minutes); digests in the outbox."""
    rounds.run_digest_round(clock.set(moment))
    return sum(1 for email in read_outbox(outbox) if "Confirm" not in email["Subject"])


@pytest.mark.django_db
def test_confirming_before_the_send_hour_gets_the_digest_at_that_hour_not_before(
    client, outbox, monkeypatch
):
    clock = Clock(monkeypatch)
    page = sign_up_and_confirm(client, outbox, clock, datetime(2026, 3, 2, 6, 30, tzinfo=PARIS))

    assert "arrives at 07:00 today (Europe/Paris)" in page
    assert digests_at(clock, outbox, datetime(2026, 3, 2, 6, 35, tzinfo=PARIS)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 2, 6, 55, tzinfo=PARIS)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 2, 7, 0, tzinfo=PARIS)) == 1
    assert Delivery.objects.get().period.isoformat() == "2026-03-02"


@pytest.mark.django_db
def test_confirming_after_the_send_hour_waits_for_tomorrows(client, outbox, monkeypatch):
    clock = Clock(monkeypatch)
    page = sign_up_and_confirm(client, outbox, clock, datetime(2026, 3, 2, 7, 30, tzinfo=PARIS))

    assert "arrives at 07:00 tomorrow (Europe/Paris)" in page
    assert digests_at(clock, outbox, datetime(2026, 3, 2, 7, 35, tzinfo=PARIS)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 2, 23, 55, tzinfo=PARIS)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 3, 6, 55, tzinfo=PARIS)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 3, 7, 0, tzinfo=PARIS)) == 1
    assert Delivery.objects.get().period.isoformat() == "2026-03-03"


@pytest.mark.django_db
def test_weekly_reader_confirming_on_their_day_after_the_hour_waits_a_week(
    client, outbox, monkeypatch
):
    clock = Clock(monkeypatch)
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
    page = sign_up_and_confirm(client, outbox, clock, monday, frequency="weekly", weekday="0")

    assert "arrives on Monday 9 March at 07:00 (Europe/Paris)" in page
    assert digests_at(clock, outbox, monday + timedelta(minutes=5)) == 0
    assert digests_at(clock, outbox, datetime(2026, 3, 9, 7, 0, tzinfo=PARIS)) == 1


@pytest.mark.django_db
def test_a_reader_confirmed_long_ago_still_gets_a_digest_when_due(outbox, monkeypatch):
    clock = Clock(monkeypatch)
    nine = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
    make_paper("Sparse Mixture of Experts", "A mixture of experts model.", seen=nine)
    Subscriber.objects.create(
        email="ada@example.org",
        topics="mixture of experts",
        status=Subscriber.Status.ACTIVE,
        time_zone="Europe/Paris",
        confirmed_at=nine - timedelta(days=30),
    )

    assert digests_at(clock, outbox, nine) == 1


ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
ZONES += ["Pacific/Chatham", "America/Santiago", "Asia/Jerusalem", "Asia/Kathmandu"]


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    send_hour=st.integers(0, 23),
    weekly=st.booleans(),
    weekday=st.integers(0, 6),
    confirmed=st.datetimes(datetime(2024, 1, 1), datetime(2034, 12, 31), timezones=st.just(UTC)),
)
def test_the_promised_send_time_is_the_first_moment_the_planner_finds_the_reader_due(
    zone, send_hour, weekly, weekday, confirmed
):
    reader = Subscriber(
        frequency="weekly" if weekly else "daily",
        weekday=weekday,
        send_hour=send_hour,
        time_zone=zone,
        digests_from=confirmed,
    )
    promised = next_send_time(reader, confirmed)

    assert confirmed <= promised < confirmed + timedelta(days=8)
    assert digest_period(reader, promised) == promised.astimezone(ZoneInfo(zone)).date()
    assert digest_period(reader, confirmed) is None or promised == confirmed
    assert digest_period(reader, promised - timedelta(minutes=1)) is None or promised == confirmed


@given(name=any_text)
def test_any_typed_zone_name_gives_a_zone(name):
    assert isinstance(zone_named(name), ZoneInfo)
