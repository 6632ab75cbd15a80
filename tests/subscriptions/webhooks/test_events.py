"""ESP webhooks through anymail's real URLs: what each event does to a reader."""

import pytest

from subscriptions.models import Subscriber, SuppressionEvent
from tests.subscriptions.webhooks.payloads import (
    MAILGUN_URL,
    POSTMARK_URL,
    mailgun_event,
    post,
    postmark_bounce,
    postmark_delivery,
)

pytestmark = pytest.mark.django_db


def test_postmark_hard_bounce_suppresses_at_once(esp, make_subscriber):
    subscriber = make_subscriber("ada@example.org")

    response = post(esp, POSTMARK_URL, postmark_bounce("Ada@Example.org"))

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BOUNCED
    [event] = subscriber.suppressions.all()
    assert (event.kind, event.source, event.esp) == ("hard_bounce", "webhook", "Postmark")
    assert "unable to deliver" in event.detail


def test_postmark_spam_complaint_suppresses_at_once(esp, make_subscriber):
    subscriber = make_subscriber("ada@example.org")

    post(esp, POSTMARK_URL, postmark_bounce("ada@example.org", type_="SpamComplaint"))

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.COMPLAINED
    assert subscriber.suppressions.get().kind == SuppressionEvent.Kind.COMPLAINT


def test_postmark_soft_bounces_suppress_only_after_the_limit(esp, make_subscriber, settings):
    settings.SOFT_BOUNCE_LIMIT = 3
    subscriber = make_subscriber("ada@example.org")

    for n in (1, 2):
        post(esp, POSTMARK_URL, postmark_bounce(subscriber.email, type_="SoftBounce",
                                                message_id=f"m-{n}"))  # fmt: skip
        subscriber.refresh_from_db()
        assert (subscriber.status, subscriber.soft_bounces) == ("active", n)

    post(esp, POSTMARK_URL, postmark_bounce(subscriber.email, type_="SoftBounce", message_id="m-3"))

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BOUNCED
    assert subscriber.suppressions.filter(kind="soft_bounce").count() == 3


def test_the_same_soft_bounce_delivered_twice_counts_once(esp, make_subscriber, settings):
    settings.SOFT_BOUNCE_LIMIT = 2
    subscriber = make_subscriber("ada@example.org")
    payload = postmark_bounce(subscriber.email, type_="SoftBounce", message_id="m-1")

    post(esp, POSTMARK_URL, payload)
    post(esp, POSTMARK_URL, payload)

    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.soft_bounces) == ("active", 1)


def test_a_delivery_ends_a_run_of_soft_bounces(esp, make_subscriber, settings):
    settings.SOFT_BOUNCE_LIMIT = 2
    subscriber = make_subscriber("ada@example.org")

    post(esp, POSTMARK_URL, postmark_bounce(subscriber.email, type_="SoftBounce", message_id="a"))
    post(esp, POSTMARK_URL, postmark_delivery(subscriber.email))
    post(esp, POSTMARK_URL, postmark_bounce(subscriber.email, type_="SoftBounce", message_id="b"))

    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.soft_bounces) == ("active", 1)


def test_mailgun_permanent_failure_suppresses_at_once(esp, make_subscriber):
    subscriber = make_subscriber("grace@example.org")

    response = post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "failed",
                                                    severity="permanent"))  # fmt: skip

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BOUNCED
    event = subscriber.suppressions.get()
    assert (event.kind, event.esp, event.message_id) == (
        "hard_bounce",
        "Mailgun",
        "<mg-1@mg.example.com>",
    )


def test_mailgun_complaint_suppresses_at_once(esp, make_subscriber):
    subscriber = make_subscriber("grace@example.org")

    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "complained"))

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.COMPLAINED


def test_mailgun_temporary_failures_suppress_after_repeated_events(esp, make_subscriber, settings):
    settings.SOFT_BOUNCE_LIMIT = 2
    subscriber = make_subscriber("grace@example.org")

    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "failed", severity="temporary",
                                         message_id="one"))  # fmt: skip
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "failed", severity="temporary",
                                         message_id="two"))  # fmt: skip

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BOUNCED


def test_mailgun_unsubscribe_event_unsubscribes(esp, make_subscriber):
    subscriber = make_subscriber("grace@example.org")

    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "unsubscribed"))

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.suppressions.get().source == SuppressionEvent.Source.WEBHOOK


def test_opens_and_clicks_change_nothing(esp, make_subscriber):
    subscriber = make_subscriber("grace@example.org")

    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "opened"))
    post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "clicked"))

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert not SuppressionEvent.objects.exists()


def test_events_for_unknown_addresses_are_accepted_and_ignored(esp):
    response = post(esp, POSTMARK_URL, postmark_bounce("stranger@example.org"))

    assert response.status_code == 200
    assert not SuppressionEvent.objects.exists()


def test_a_complaint_for_the_punycode_address_suppresses_the_idn_reader(esp, client, outbox):
    client.post("/subscribe/", {"email": "reader@bücherei.de", "topics": "llms",
                                "frequency": "daily", "weekday": "0", "send_hour": "7",
                                "time_zone": "UTC"})  # fmt: skip
    reader = Subscriber.objects.get()

    response = post(esp, POSTMARK_URL, postmark_bounce("reader@xn--bcherei-n2a.de",
                                                       type_="SpamComplaint"))  # fmt: skip

    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.COMPLAINED


def test_a_bounce_reported_with_a_unicode_domain_finds_the_reader(esp, make_subscriber):
    reader = make_subscriber("reader@xn--bcherei-n2a.de")

    post(esp, MAILGUN_URL, mailgun_event("reader@Bücherei.de", "failed", severity="permanent"))

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
