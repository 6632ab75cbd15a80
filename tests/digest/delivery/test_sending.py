"""Sending each planned delivery once: claims, retries, failures, hidden papers, ESP answers."""

import smtplib
import threading
from datetime import timedelta

import pytest
import requests
from anymail.exceptions import (
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digest.delivery import messages, planning, retries, rounds, sending
from digest.delivery.sending import Outcome
from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.digest.delivery.delivery_records import (
    NOW,
    ScriptedBackend,
    api_error,
    make_paper,
    make_subscriber,
    sent_to,
    text_of,
)

pytestmark = pytest.mark.django_db


def test_a_claimed_delivery_is_never_sent_twice(planned, outbox):
    assert sending.send_delivery(planned[0]).outcome == Outcome.SENT
    assert sending.send_delivery(planned[0]).outcome == Outcome.NOT_CLAIMED
    assert len(read_outbox(outbox)) == 1


def test_a_delivery_being_sent_is_left_alone_until_its_claim_times_out(planned, settings):
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 600
    Delivery.objects.filter(pk=planned[0]).update(
        status=Delivery.Status.SENDING, claimed_at=timezone.now() - timedelta(seconds=60)
    )
    assert sending.send_delivery(planned[0]).outcome == Outcome.NOT_CLAIMED

    Delivery.objects.filter(pk=planned[0]).update(
        claimed_at=timezone.now() - timedelta(seconds=601)
    )
    assert planning.stalled_deliveries() == [planned[0]]
    backend = ScriptedBackend()
    assert sending.send_delivery(planned[0], connection=backend).outcome == Outcome.SENT
    delivery = Delivery.objects.get(pk=planned[0])
    assert backend.sent[0].extra_headers["Message-ID"] == delivery.message_id
    assert delivery.message_id == messages.message_id_for(delivery)  # the same on every attempt


def test_transient_esp_error_retries_later_with_backoff(planned, settings):
    settings.DIGEST_RETRY_BASE_SECONDS = 30
    backend = ScriptedBackend({"ada@example.com": api_error(503)})
    ada = Delivery.objects.get(subscriber__email="ada@example.com").pk

    result = sending.send_delivery(ada, connection=backend)

    assert result.outcome == Outcome.RETRY and 15 <= result.retry_in <= 30
    delivery = Delivery.objects.get(pk=ada)
    assert delivery.status == Delivery.Status.PLANNED and "503" in delivery.error
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=10)
    assert sending.send_delivery(ada, connection=ScriptedBackend()).outcome == Outcome.NOT_CLAIMED

    Delivery.objects.filter(pk=ada).update(next_attempt_at=timezone.now())
    assert sending.send_delivery(ada, connection=ScriptedBackend()).outcome == Outcome.SENT
    assert Delivery.objects.get(pk=ada).attempts == 2


def test_transient_errors_give_up_after_the_last_attempt(planned, settings):
    settings.DIGEST_MAX_ATTEMPTS = 2
    backend = ScriptedBackend({"ada@example.com": requests.ConnectionError("refused")})
    ada = Delivery.objects.get(subscriber__email="ada@example.com").pk
    assert sending.send_delivery(ada, connection=backend).outcome == Outcome.RETRY
    Delivery.objects.filter(pk=ada).update(next_attempt_at=timezone.now())

    assert sending.send_delivery(ada, connection=backend).outcome == Outcome.FAILED
    assert Delivery.objects.get(pk=ada).status == Delivery.Status.FAILED


def test_permanent_error_fails_only_that_delivery(planned):
    backend = ScriptedBackend({"grace@example.com": AnymailRecipientsRefused("invalid recipient")})

    results = sending.send_deliveries(planned, connection=backend)

    assert sorted(message.to[0] for message in backend.sent) == [
        "ada@example.com",
        "alan@example.com",
    ]
    grace = Delivery.objects.get(subscriber__email="grace@example.com")
    assert grace.status == Delivery.Status.FAILED and "invalid recipient" in grace.error
    assert results[grace.pk].outcome == Outcome.FAILED
    assert backend.opened >= 2  # reconnected after the error instead of reusing a bad connection


def test_a_refused_address_is_suppressed_and_gets_no_more_digests(planned):
    refusal = smtplib.SMTPRecipientsRefused({"grace@example.com": (550, b"no such user")})
    sending.send_deliveries(planned, connection=ScriptedBackend({"grace@example.com": refusal}))

    grace = Subscriber.objects.get(email="grace@example.com")
    assert grace.status == Subscriber.Status.BOUNCED
    event = grace.suppressions.get()
    assert (event.kind, event.source) == ("hard_bounce", "sending")
    assert "no such user" in event.detail
    tomorrow = planning.plan_deliveries(NOW + timedelta(days=1))
    assert sorted(
        Delivery.objects.filter(run=tomorrow).values_list("subscriber__email", flat=True)
    ) == [
        "ada@example.com",
        "alan@example.com",
    ]


def test_an_error_that_is_not_about_the_address_suppresses_nobody(planned):
    sending.send_deliveries(
        planned, connection=ScriptedBackend({"ada@example.com": api_error(422)})
    )

    assert not Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).exists()


def test_a_chunk_shares_one_connection(planned):
    backend = ScriptedBackend()
    sending.send_deliveries(planned, connection=backend)
    assert backend.opened == 1 and len(backend.sent) == 3


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (api_error(429), True),
        (api_error(500), True),
        (api_error(503), True),
        (AnymailRequestsAPIError("timed out"), True),  # no response at all
        (api_error(400), False),
        (api_error(422), False),
        (AnymailRecipientsRefused("refused"), False),
        (AnymailInvalidAddress("bad"), False),
        (requests.Timeout("slow"), True),
        (TimeoutError("slow"), True),
        (ConnectionResetError("reset"), True),
        (smtplib.SMTPServerDisconnected("gone"), True),
        (smtplib.SMTPResponseException(451, b"try later"), True),
        (smtplib.SMTPResponseException(550, b"no such user"), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}), False),
        (smtplib.SMTPRecipientsRefused({"a@b": (451, b"greylisted, try later")}), True),
        (ValueError("a bug"), False),
    ],
)
def test_transient_errors_are_told_from_permanent_ones(error, transient):
    assert retries.is_transient(error) is transient


def test_retry_delay_doubles_with_jitter_up_to_a_cap(settings):
    settings.DIGEST_RETRY_BASE_SECONDS = 10
    settings.DIGEST_RETRY_MAX_SECONDS = 100
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        delays = {retries.retry_delay(attempts) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered


def test_a_chunk_claims_only_what_no_other_worker_holds(planned):
    grace = Delivery.objects.get(subscriber__email="grace@example.com")
    claimed_at = timezone.now() - timedelta(seconds=5)
    Delivery.objects.filter(pk=grace.pk).update(
        status=Delivery.Status.SENDING, claimed_at=claimed_at, attempts=1
    )
    backend = ScriptedBackend()

    results = sending.send_deliveries(planned, connection=backend)

    assert sorted(message.to[0] for message in backend.sent) == [
        "ada@example.com",
        "alan@example.com",
    ]
    assert results[grace.pk].outcome == Outcome.NOT_CLAIMED
    grace.refresh_from_db()
    assert (grace.status, grace.claimed_at, grace.attempts) == ("sending", claimed_at, 1)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2


def test_each_delivery_of_a_chunk_is_marked_sent_with_its_own_message_id(planned):
    backend = ScriptedBackend()

    sending.send_deliveries(planned, connection=backend)

    recorded = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    assert {message.to[0]: message.extra_headers["Message-ID"] for message in backend.sent} == (
        recorded
    )
    assert len(set(recorded.values())) == 3
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_chunk_costs_a_few_queries_plus_one_per_message_to_fence_it(papers, settings):
    settings.DIGEST_MARK_SENT_EVERY = 0  # the chunk's sent marks in one write

    def queries_beyond_one_per_message(readers: list[str]) -> int:
        for name in readers:
            make_subscriber(f"{name}@example.com")
        ids = planning.queue_run(planning.plan_deliveries(NOW))
        with CaptureQueriesContext(connection) as queries:
            results = sending.send_deliveries(ids, connection=ScriptedBackend())
        assert len(results) == len(readers)
        assert {result.outcome for result in results.values()} == {Outcome.SENT}
        return len(queries) - len(ids)  # the fence right before each handover

    few = queries_beyond_one_per_message(["ada", "grace"])
    more = queries_beyond_one_per_message(["a1", "a2", "a3", "a4", "a5", "a6"])

    # the claim; loading deliveries, their papers and subscribers; marking the chunk sent
    assert few == more <= 5


def test_marking_each_message_sent_costs_no_more_writes_than_fencing_the_next(papers, settings):
    settings.DIGEST_MARK_SENT_EVERY = 1  # the default: a killed worker hands one message over again

    def queries_beyond_one_per_message(readers: list[str]) -> int:
        for name in readers:
            make_subscriber(f"{name}@example.com")
        ids = planning.queue_run(planning.plan_deliveries(NOW))
        with CaptureQueriesContext(connection) as queries:
            results = sending.send_deliveries(ids, connection=ScriptedBackend())
        assert {result.outcome for result in results.values()} == {Outcome.SENT}
        assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"}
        return len(queries) - len(ids)

    few = queries_beyond_one_per_message(["ada", "grace"])
    more = queries_beyond_one_per_message(["a1", "a2", "a3", "a4", "a5", "a6"])

    # a message's sent mark goes in the fence's UPDATE before the next handover
    assert few == more <= 5


def test_deliveries_not_handed_over_when_the_server_is_down_are_put_back_for_later(planned):
    class Unreachable(ScriptedBackend):
        def open(self) -> bool:
            raise ConnectionRefusedError("connection refused")

    results = sending.send_deliveries(planned, connection=Unreachable())

    assert {result.outcome for result in results.values()} == {Outcome.RETRY}
    for delivery in Delivery.objects.all():
        assert (delivery.status, delivery.attempts) == ("planned", 0)
        assert delivery.next_attempt_at > timezone.now() and "refused" in delivery.error


def test_subscriber_who_unsubscribed_after_planning_gets_nothing(planned, outbox):
    Subscriber.objects.filter(email="ada@example.com").update(status=Subscriber.Status.UNSUBSCRIBED)

    sending.send_deliveries(planned)

    assert sent_to(outbox) == ["alan@example.com", "grace@example.com"]
    assert Delivery.objects.get(subscriber__email="ada@example.com").status == "skipped"


def test_a_paper_hidden_after_planning_is_left_out_of_the_email_and_its_record(outbox):
    make_paper("Sparse Mixture of Experts at Scale", "A mixture of experts routes tokens.")
    spam = make_paper("Mixture of Experts, Buy Now", "A mixture of experts for sale.")
    ada = make_subscriber("ada@example.com")
    [delivery] = planning.queue_run(planning.plan_deliveries(NOW))
    assert DeliveredPaper.objects.filter(delivery=delivery).count() == 2
    Paper.objects.filter(pk=spam.pk).update(hidden=True)  # the editor, before the send

    sending.send_deliveries([delivery])

    [message] = read_outbox(outbox)
    assert "Sparse Mixture of Experts at Scale" in text_of(message)
    assert "Buy Now" not in text_of(message)
    items = DeliveredPaper.objects.filter(delivery__subscriber=ada)
    assert [item.paper.title for item in items] == ["Sparse Mixture of Experts at Scale"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_digest_whose_papers_were_all_hidden_after_planning_is_skipped(planned, outbox):
    Paper.objects.update(hidden=True)

    results = sending.send_deliveries(planned)

    assert read_outbox(outbox) == []
    assert {result.outcome for result in results.values()} == {Outcome.SKIPPED}
    for delivery in Delivery.objects.all():
        assert delivery.status == Delivery.Status.SKIPPED
        assert delivery.error == "the editors hid every paper of it after it was planned"


def test_esp_message_id_is_recorded_when_the_esp_gives_one(papers, settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    make_subscriber("ada@example.com")

    rounds.run_digest_round(NOW)

    [message] = mail.outbox
    delivery = Delivery.objects.get()
    assert delivery.esp_message_id == str(message.anymail_status.message_id) != ""


def test_postmark_answers_are_sorted_into_sent_and_retry_later(papers, settings):
    from tests.digest.delivery.test_sending_worker import FakePostmark

    server = FakePostmark(failure_rate=0.5)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test", "POSTMARK_API_URL": server.url}
    for n in range(20):
        make_subscriber(f"reader{n}@example.com")
    try:
        results = sending.send_deliveries(planning.queue_run(planning.plan_deliveries(NOW)))
    finally:
        server.shutdown()
        server.server_close()

    sent = Delivery.objects.filter(status=Delivery.Status.SENT)
    waiting = Delivery.objects.filter(status=Delivery.Status.PLANNED, attempts=1)
    assert sent.count() == len(server.accepted) and waiting.count() == server.failures
    assert sent.count() + waiting.count() == 20 and server.failures > 0
    assert {results[d.pk].outcome for d in waiting} == {Outcome.RETRY}
    assert sorted(sent.values_list("esp_message_id", flat=True)) == sorted(
        message["MessageID"] for message in server.accepted
    )


def test_sent_marks_are_written_every_n_messages_when_asked(papers, settings):
    def mark_statements(every: int, readers: list[str]) -> int:
        settings.DIGEST_MARK_SENT_EVERY = every
        for name in readers:
            make_subscriber(f"{name}@example.com")
        ids = planning.queue_run(planning.plan_deliveries(NOW))
        with CaptureQueriesContext(connection) as queries:
            sending.send_deliveries(ids, connection=ScriptedBackend())
        assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"sent"}
        return sum(1 for query in queries if "CASE" in query["sql"])

    assert mark_statements(0, ["a1", "a2", "a3", "a4"]) == 1
    assert mark_statements(2, ["b1", "b2", "b3", "b4"]) == 2
