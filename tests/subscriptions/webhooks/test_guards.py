"""ESP webhooks refuse what no ESP sent: no secret, a forged signature, a garbled body."""

import base64
import json

import pytest
from django.test import Client

from subscriptions.models import Subscriber, SuppressionEvent
from tests.subscriptions.webhooks.payloads import (
    MAILGUN_KEY,
    MAILGUN_URL,
    MAILJET_URL,
    POSTMARK_URL,
    SECRET,
    mailgun_event,
    post,
    postmark_bounce,
)

pytestmark = pytest.mark.django_db


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
