"""subscriptions.consent: the rules the pages and webhooks share."""

import threading

import pytest
from django.db import connection

from subscriptions import consent, tasks
from subscriptions.models import Subscriber, SuppressionEvent
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db


def test_send_confirmation_is_refused_within_the_hour(make_subscriber, outbox):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)

    assert consent.send_confirmation(subscriber) is True
    assert consent.send_confirmation(Subscriber.objects.get()) is False
    assert read_outbox(outbox) == []  # owed, with the change: the caller queues it
    assert tasks.queue_consent_emails() == 1
    assert len(read_outbox(outbox)) == 1


def test_erase_keeps_suppression_history_without_personal_data(make_subscriber):
    subscriber = make_subscriber("ada@example.org")
    consent.suppress(
        subscriber,
        kind=SuppressionEvent.Kind.HARD_BOUNCE,
        source=SuppressionEvent.Source.WEBHOOK,
        detail="550 ada@example.org: no such user",
        esp="Postmark",
        message_id="<m-1@example.org>",
    )

    consent.erase(subscriber)

    assert not Subscriber.objects.exists()
    rows = list(SuppressionEvent.objects.order_by("id").values())
    assert [row["kind"] for row in rows] == ["hard_bounce", "erasure"]
    assert all(row["subscriber_id"] is None for row in rows)
    assert "ada" not in repr(rows) and "example.org" not in repr(rows)


def test_editor_suppression_stops_mail_and_reactivate_restores_it(make_subscriber):
    subscriber = make_subscriber()

    stopped = consent.suppress(
        subscriber, kind=SuppressionEvent.Kind.EDITOR, source=SuppressionEvent.Source.EDITOR
    )
    subscriber.refresh_from_db()
    assert stopped is True
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_reason == "Suppressed by an editor"

    consent.reactivate(subscriber)
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_reactivating_a_never_confirmed_address_leaves_it_pending(make_subscriber, outbox):
    subscriber = make_subscriber(status=Subscriber.Status.BOUNCED, confirmed_at=None)

    consent.reactivate(subscriber)

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING
    assert read_outbox(outbox) == []


def test_a_complaint_after_unsubscribing_is_recorded_as_a_complaint(make_subscriber):
    subscriber = make_subscriber()
    consent.unsubscribe(subscriber, source=SuppressionEvent.Source.LINK)

    stopped = consent.suppress(
        subscriber, kind=SuppressionEvent.Kind.COMPLAINT, source=SuppressionEvent.Source.WEBHOOK
    )

    subscriber.refresh_from_db()
    assert stopped is False  # mail had already stopped
    assert subscriber.status == Subscriber.Status.COMPLAINED
    assert subscriber.suppressions.count() == 2


def test_confirming_twice_changes_nothing_the_second_time(make_subscriber):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)

    assert consent.confirm(subscriber) is True
    first = Subscriber.objects.get().confirmed_at
    assert consent.confirm(Subscriber.objects.get()) is False
    assert Subscriber.objects.get().confirmed_at == first


@pytest.mark.services
def test_simultaneous_sign_ups_for_one_address_make_one_subscriber_and_one_email(
    postgres, transactional_db, outbox
):
    barrier = threading.Barrier(4)
    errors = []

    def sign_up() -> None:
        try:
            barrier.wait()
            consent.sign_up(
                consent.SignUp(
                    email="Race@example.org",
                    preferences={"topics": "mixture of experts", "time_zone": "UTC"},
                    ip="192.0.2.1",
                    consent_text="I agree.",
                )
            )
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Subscriber.objects.count() == 1
    assert tasks.queue_consent_emails() == 1
    assert len(read_outbox(outbox)) == 1
