"""Batch sending against a local stub of Postmark's batch-with-templates API (no network)."""

import json
import uuid

import pytest
from django.core.mail import get_connection

from digest.delivery import planning, sending
from digest.delivery.messages import message_id_for
from digest.delivery.sending import Outcome
from digest.models import Delivery
from subscriptions.models import Subscriber, SuppressionEvent
from tests.conftest import QuietHandler, http_server
from tests.digest.delivery.delivery_records import NOW, make_subscriber

pytestmark = pytest.mark.django_db
READERS = ["ada", "grace", "gone", "busy", "alan"]


class PostmarkStub(QuietHandler):
    """Postmark's /email/batchWithTemplates: one result per message, in order. `gone` is an
    inactive address (406); `busy` fails with an error code of its own while `busy_times` > 0."""

    calls: list[list[dict]] = []
    busy_times = 1

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/email/batchWithTemplates"
        messages = body["Messages"]
        type(self).calls.append(messages)
        answers = []
        for message in messages:
            to = message["To"]
            if to.startswith("gone@"):
                answers.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to a recipient that has been marked as "
                        f"inactive.\nFound inactive addresses: {to}.\nInactive recipients are "
                        "ones that have generated a hard bounce or a spam complaint. ",
                    }
                )
            elif to.startswith("busy@") and type(self).busy_times > 0:
                answers.append({"ErrorCode": 100, "Message": "Maintenance, try again"})
            else:
                answers.append(
                    {"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4()), "To": to}
                )
        if any(message["To"].startswith("busy@") for message in messages):
            type(self).busy_times -= 1
        payload = json.dumps(answers).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def postmark(settings, papers):
    PostmarkStub.calls, PostmarkStub.busy_times = [], 1
    with http_server(PostmarkStub) as url:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token", "POSTMARK_API_URL": url + "/"}
        settings.ESP_BATCH_SIZE, settings.ESP_BATCH_TEMPLATE = 2, "digest-passthrough"
        settings.ESP_MAX_PER_SECOND = settings.ESP_MAX_PER_HOUR = 0
        for name in READERS:
            make_subscriber(f"{name}@example.com")
        yield planning.queue_run(planning.plan_deliveries(NOW))


def by_reader() -> dict[str, Delivery]:
    return {
        d.subscriber.email.split("@")[0]: d for d in Delivery.objects.select_related("subscriber")
    }


def test_one_call_carries_up_to_the_batch_size_each_reader_with_their_digest(postmark):
    results = sending.send_deliveries(postmark, connection=get_connection())

    assert [len(call) for call in PostmarkStub.calls] == [2, 2, 1]
    messages = [message for call in PostmarkStub.calls for message in call]
    assert sorted(m["To"].split("@")[0] for m in messages) == sorted(READERS)
    deliveries = by_reader()
    for message in messages:
        delivery = deliveries[message["To"].split("@")[0]]
        assert message["TemplateAlias"] == "digest-passthrough"
        model = message["TemplateModel"]
        assert "Sparse Mixture of Experts at Scale" in model["html_body"]
        assert "Sparse Mixture of Experts at Scale" in model["text_body"]
        assert model["subject"].startswith("1 new paper for you")
        headers = {header["Name"]: header["Value"] for header in message["Headers"]}
        assert headers["Message-ID"] == message_id_for(delivery)
        assert "one-click" in headers["List-Unsubscribe"]
    assert sorted(result.outcome for result in results.values()) == sorted(
        [Outcome.SENT] * 3 + [Outcome.FAILED, Outcome.RETRY]
    )


def test_each_recipients_result_comes_back_into_their_delivery(postmark):
    sending.send_deliveries(postmark, connection=get_connection())

    deliveries = by_reader()
    accepted = {m["To"].split("@")[0] for call in PostmarkStub.calls for m in call} - {
        "gone",
        "busy",
    }
    for name in accepted:
        assert deliveries[name].status == "sent"
        assert deliveries[name].esp_message_id  # Postmark's MessageID for that message
        assert deliveries[name].message_id == message_id_for(deliveries[name])
    assert deliveries["gone"].status == "failed"
    assert Subscriber.objects.get(email="gone@example.com").status != "active"
    assert SuppressionEvent.objects.filter(subscriber__email="gone@example.com").exists()
    assert deliveries["busy"].status == "planned" and deliveries["busy"].next_attempt_at


def test_a_partial_failure_retries_only_the_recipients_that_failed(postmark):
    sending.send_deliveries(postmark, connection=get_connection())
    Delivery.objects.filter(status="planned").update(next_attempt_at=None)
    first_calls = len(PostmarkStub.calls)

    results = sending.send_deliveries(postmark, connection=get_connection())

    retried = PostmarkStub.calls[first_calls:]
    assert [[m["To"] for m in call] for call in retried] == [["busy@example.com"]]
    assert [r.outcome for r in results.values()].count(Outcome.SENT) == 1
    assert dict(Delivery.objects.values_list("subscriber__email", "status")) == {
        "ada@example.com": "sent",
        "grace@example.com": "sent",
        "gone@example.com": "failed",
        "busy@example.com": "sent",
        "alan@example.com": "sent",
    }


def test_a_batch_hands_over_only_claims_still_ours_and_marks_what_the_esp_accepted(postmark):
    connection = get_connection()
    send = connection.send_messages

    def send_then_lose_the_claims(messages) -> int:
        accepted = send(messages)
        if len(PostmarkStub.calls) == 1:  # another worker takes every claim still being sent
            Delivery.objects.filter(status=Delivery.Status.SENDING).update(claim_token="another")
        return accepted

    connection.send_messages = send_then_lose_the_claims
    results = sending.send_deliveries(postmark, connection=connection)

    first_call = {message["To"].split("@")[0] for message in PostmarkStub.calls[0]}
    assert len(PostmarkStub.calls) == 1 and len(first_call) == 2
    rows = by_reader()
    assert {name for name, row in rows.items() if row.status == Delivery.Status.SENT} == first_call
    assert {rows[name].pk for name in set(READERS) - first_call} == {
        pk for pk, result in results.items() if result.outcome == Outcome.NOT_CLAIMED
    }
