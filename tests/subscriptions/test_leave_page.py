"""The unsubscribe link's page: pause for a month, weekly instead, or unsubscribe with a receipt.
The RFC 8058 one-click POST stays immediate, with no receipt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from digest.delivery.planning import due_subscribers
from subscriptions import links, pauses
from subscriptions.models import Subscriber, SuppressionEvent
from subscriptions.tasks import send_owed_emails
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db


def leave_path(subscriber: Subscriber) -> str:
    return links.unsubscribe_url(subscriber).removeprefix("http://localhost:8000")


def test_leave_page_offers_pause_weekly_and_unsubscribe_to_a_daily_reader(client, make_subscriber):
    reader = make_subscriber(frequency="daily")

    html = client.get(leave_path(reader)).content.decode()

    assert 'name="action" value="pause"' in html
    assert 'name="action" value="weekly"' in html
    assert 'name="action" value="unsubscribe"' in html
    assert "Pause for a month" in html and "Weekly instead" in html


def test_a_weekly_reader_is_not_offered_weekly(client, make_subscriber):
    reader = make_subscriber(frequency="weekly")

    html = client.get(leave_path(reader)).content.decode()

    assert 'value="weekly"' not in html and 'value="pause"' in html


def test_pause_for_a_month_stops_digests_for_30_days_then_they_come_back(
    client, make_subscriber, outbox, monkeypatch
):
    reader = make_subscriber(send_hour=0)
    paused_at = timezone.now()

    page = client.post(leave_path(reader), {"action": "pause"})

    assert page.status_code == 200 and b"Paused for a month" in page.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PAUSED
    assert (
        timedelta(days=29, hours=23)
        < reader.paused_until - paused_at
        <= timedelta(days=30, minutes=1)
    )
    assert due_subscribers(paused_at + timedelta(days=29)) == []
    back = paused_at + timedelta(days=30, hours=1)
    assert [s.pk for s, _ in due_subscribers(back)] == [reader.pk]  # before beat marks it
    monkeypatch.setattr(timezone, "now", lambda: back)
    send_owed_emails()  # beat's minutely housekeeping
    reader.refresh_from_db()
    assert (reader.status, reader.paused_until) == (Subscriber.Status.ACTIVE, None)
    assert read_outbox(outbox) == []  # pausing sends no email


def test_weekly_instead_keeps_the_hour_and_takes_the_chosen_day(client, make_subscriber):
    reader = make_subscriber(frequency="daily", send_hour=8, time_zone="Asia/Tokyo")

    page = client.post(leave_path(reader), {"action": "weekly", "weekday": "4"})

    reader.refresh_from_db()
    assert (reader.frequency, reader.weekday, reader.send_hour) == ("weekly", 4, 8)
    assert reader.status == Subscriber.Status.ACTIVE
    assert b"every Friday at 08:00 (Asia/Tokyo)" in page.content


def test_weekly_with_a_forged_day_keeps_the_current_one(client, make_subscriber):
    reader = make_subscriber(frequency="daily", weekday=2)

    client.post(leave_path(reader), {"action": "weekly", "weekday": "9"})

    reader.refresh_from_db()
    assert (reader.frequency, reader.weekday) == ("weekly", 2)


def test_unsubscribing_on_the_page_sends_one_receipt_without_list_unsubscribe(
    client, make_subscriber, outbox
):
    reader = make_subscriber()

    page = client.post(leave_path(reader), {"action": "unsubscribe", "reason": "not relevant"})

    assert b"You're unsubscribed" in page.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    [receipt] = read_outbox(outbox)
    assert receipt["Subject"] == "You're unsubscribed from Paperboy"
    assert receipt["To"] == reader.email
    assert "List-Unsubscribe" not in receipt
    text = receipt.get_body(("plain",)).get_content()
    assert "will not send the digest to grace@example.org any more" in text
    assert "/preferences/" in text  # the way back
    client.post(leave_path(reader), {"action": "unsubscribe"})
    assert len(read_outbox(outbox)) == 1  # already off: no second receipt


def test_one_click_unsubscribe_is_immediate_and_sends_no_receipt(client, make_subscriber, outbox):
    reader = make_subscriber()
    url = links.one_click_unsubscribe_url(reader).removeprefix("http://localhost:8000")

    response = client.post(url, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert reader.suppressions.get().source == SuppressionEvent.Source.ONE_CLICK
    assert read_outbox(outbox) == []


def test_resuming_from_preferences_ends_a_month_pause(make_subscriber):
    reader = make_subscriber()
    pauses.pause_for_a_month(reader)

    pauses.resume(reader)

    reader.refresh_from_db()
    assert (reader.status, reader.paused_until) == (Subscriber.Status.ACTIVE, None)


def test_a_pause_without_end_is_not_ended_by_beat(make_subscriber):
    reader = make_subscriber()
    pauses.pause(reader)

    assert pauses.end_pauses(timezone.now() + timedelta(days=3650)) == 0
    assert Subscriber.objects.get().status == Subscriber.Status.PAUSED
