"""ESP webhooks through anymail's real URLs, with the payload shapes the ESPs document."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from subscriptions.models import Subscriber, SuppressionEvent

pytestmark = pytest.mark.django_db
SECRET = "paperboy-hooks:s3cret-for-tests"
MAILGUN_KEY = "key-mailgun-webhook-signing-for-tests"
POSTMARK_URL = "/anymail/postmark/tracking/"
MAILGUN_URL = "/anymail/mailgun/tracking/"
MAILJET_URL = "/anymail/mailjet/tracking/"  # sends events in batches


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


@pytest.fixture
def esp() -> Client:
    auth = base64.b64encode(SECRET.encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {auth}")


def postmark_bounce(email: str, *, type_: str = "HardBounce", message_id: str = "m-1") -> dict:
    """Postmark's bounce webhook (RecordType Bounce); its spam complaints use the same shape."""
    names = {"HardBounce": ("Hard bounce", 1), "SoftBounce": ("Soft bounce", 4096),
             "SpamComplaint": ("Spam complaint", 512)}  # fmt: skip
    name, code = names[type_]
    return {
        "RecordType": "SpamComplaint" if type_ == "SpamComplaint" else "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": type_,
        "TypeCode": code,
        "Name": name,
        "Tag": "digest",
        "MessageID": message_id,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "digest@example.com",
        "BouncedAt": "2026-11-25T05:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": type_ != "SoftBounce",
        "CanActivate": True,
        "Subject": "Your papers for today",
    }


def postmark_delivery(email: str) -> dict:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "m-9",
        "Recipient": email,
        "Tag": "digest",
        "DeliveredAt": "2026-11-25T05:40:01Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }


def mailgun_event(email: str, event: str, *, severity: str = "", message_id: str = "mg-1") -> dict:
    timestamp = str(int(time.time()))
    token = hashlib.sha256(f"{email}{event}{message_id}".encode()).hexdigest()[:50]
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    data = {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1521233123.501324,
        "log-level": "error" if event == "failed" else "warn",
        "recipient": email,
        "recipient-domain": email.split("@")[1],
        "tags": ["digest"],
        "user-variables": {},
        "envelope": {"sender": "digest@example.com", "transport": "smtp", "targets": email},
        "message": {
            "headers": {
                "to": email,
                "message-id": f"{message_id}@mg.example.com",
                "from": "Paperboy <digest@example.com>",
                "subject": "Your papers for today",
            },
            "attachments": [],
            "size": 111,
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
    }
    if event == "failed":
        data["severity"] = severity
        data["reason"] = "bounce" if severity == "permanent" else "generic"
        data["delivery-status"] = {
            "attempt-no": 1,
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 No such user" if severity == "permanent" else "4.2.2 Mailbox full",
            "description": "",
            "session-seconds": 0.5,
        }
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": data,
    }


def post(client: Client, url: str, payload: dict | list):
    return client.post(url, json.dumps(payload), content_type="application/json")


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


WRONG_PASSWORD = "Basic " + base64.b64encode(b"paperboy-hooks:wrong").decode()
GARBLED_AUTH = "Basic %%%"


@pytest.mark.parametrize("auth", [None, WRONG_PASSWORD, GARBLED_AUTH])
@pytest.mark.parametrize("esp_name", ["postmark", "mailgun"])
def test_webhook_without_the_secret_is_refused_and_changes_nothing(make_subscriber, auth, esp_name):
    subscriber = make_subscriber("ada@example.org")
    client = Client(HTTP_AUTHORIZATION=auth) if auth else Client()
    url, payload = {
        "postmark": (POSTMARK_URL, postmark_bounce(subscriber.email)),
        "mailgun": (MAILGUN_URL, mailgun_event(subscriber.email, "complained")),
    }[esp_name]

    response = post(client, url, payload)

    assert response.status_code == 403
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert not SuppressionEvent.objects.exists()


@pytest.mark.parametrize("backend", ["config.outbox.OutboxEmailBackend",
                                     "anymail.backends.postmark.EmailBackend"])  # fmt: skip
@pytest.mark.parametrize("auth", [None, WRONG_PASSWORD, "Basic " + base64.b64encode(b":").decode()])
def test_with_no_secret_configured_every_webhook_is_refused(settings, make_subscriber, backend,
                                                            auth):  # fmt: skip
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.EMAIL_BACKEND = backend
    subscriber = make_subscriber("ada@example.org")
    client = Client(HTTP_AUTHORIZATION=auth) if auth else Client()

    responses = [
        post(client, POSTMARK_URL, postmark_bounce(subscriber.email)),
        post(client, POSTMARK_URL, postmark_bounce(subscriber.email, type_="SpamComplaint")),
        post(client, MAILGUN_URL, mailgun_event(subscriber.email, "complained")),
        post(client, MAILJET_URL, [{"email": subscriber.email, "event": "spam", "time": 1}]),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    assert "ANYMAIL_WEBHOOK_SECRET" in responses[0].content.decode()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert not SuppressionEvent.objects.exists()


def test_the_secret_may_be_a_list_of_credentials(settings, make_subscriber):
    settings.ANYMAIL = {"WEBHOOK_SECRET": ["old:one", SECRET]}
    subscriber = make_subscriber("ada@example.org")
    auth = base64.b64encode(SECRET.encode()).decode()

    response = post(Client(HTTP_AUTHORIZATION=f"Basic {auth}"), POSTMARK_URL,
                    postmark_bounce(subscriber.email))  # fmt: skip

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.BOUNCED


MALFORMED_BODIES = {
    "invalid JSON": "{not json",
    "not UTF-8": b"\xff\xfe{",
    "a JSON string": '"bounce"',
    "a JSON number": "3",
    "a JSON list": "[]",
    "an empty object": "{}",
    "a bounce with no address": json.dumps({"RecordType": "Bounce", "Type": "HardBounce"}),
}


@pytest.mark.parametrize(
    "url, body",
    [
        pytest.param(url, body, id=f"{url.split('/')[2]}-{name}")
        for url in (POSTMARK_URL, MAILGUN_URL, MAILJET_URL)
        for name, body in MALFORMED_BODIES.items()
        if (url, body) != (MAILJET_URL, "[]")  # an empty Mailjet batch: well formed, no event
    ],
)
def test_a_malformed_payload_answers_400_not_500(esp, make_subscriber, url, body):
    subscriber = make_subscriber("ada@example.org")
    esp.raise_request_exception = False

    response = esp.post(url, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.content.startswith(b"Malformed webhook payload")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_mailgun_without_a_signing_key_answers_400(settings, esp, make_subscriber):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    subscriber = make_subscriber("grace@example.org")
    esp.raise_request_exception = False

    response = post(esp, MAILGUN_URL, mailgun_event(subscriber.email, "complained"))

    assert response.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_a_batch_keeps_its_good_events_beside_a_bad_one(esp, make_subscriber):
    subscriber = make_subscriber("ada@example.org")
    batch = [
        {"event": "spam", "time": 1700000000},  # no address
        {"email": subscriber.email, "event": "spam", "time": 1700000000},
    ]

    response = post(esp, MAILJET_URL, batch)

    assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.COMPLAINED


def test_a_database_failure_answers_500_so_the_esp_retries(esp, make_subscriber, monkeypatch):
    from django.db import OperationalError

    from subscriptions import consent

    subscriber = make_subscriber("ada@example.org")
    esp.raise_request_exception = False

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(consent, "suppress", database_down)

    response = post(esp, POSTMARK_URL, postmark_bounce(subscriber.email))

    assert response.status_code == 500


def test_mailgun_event_with_a_forged_signature_is_refused(esp, make_subscriber):
    subscriber = make_subscriber("grace@example.org")
    payload = mailgun_event(subscriber.email, "complained")
    payload["signature"]["signature"] = "0" * 64

    response = post(esp, MAILGUN_URL, payload)

    assert response.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


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
