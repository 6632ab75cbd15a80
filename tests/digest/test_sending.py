import email
import smtplib
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from email.policy import compat32

import pytest
import requests
from anymail.exceptions import (
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from digest import sending
from digest.models import DeliveredPaper, Delivery, DigestRun, Paper
from digest.sending import Outcome
from subscriptions.models import Subscriber
from tests.conftest import PROJECT_DIR, read_outbox

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday


def make_paper(title: str, abstract: str = "", *, seen: datetime = NOW, **fields) -> Paper:
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=seen - timedelta(hours=2),
        last_seen=seen,
        **fields,
    )


def make_subscriber(email: str, topics: str = "mixture of experts", **fields) -> Subscriber:
    fields.setdefault("send_hour", 7)
    return Subscriber.objects.create(
        email=email, topics=topics, status=Subscriber.Status.ACTIVE, **fields
    )


@pytest.fixture
def papers() -> list[Paper]:
    return [
        make_paper(
            "Sparse Mixture of Experts at Scale",
            "We train a mixture of experts model. It routes tokens to experts.",
        ),
        make_paper("Quantization of Large Models", "We quantize weights to four bits."),
        make_paper("Protein Folding with Diffusion", "We fold proteins."),
    ]


def api_error(status: int) -> AnymailRequestsAPIError:
    """What anymail raises for an HTTP error answer from the ESP."""
    response = requests.Response()
    response.status_code, response.reason, response._content = status, "busy", b"{}"
    return AnymailRequestsAPIError("ESP said no", response=response)


def sent_to(outbox) -> list[str]:
    return sorted(email["To"] for email in read_outbox(outbox))


def test_round_sends_one_digest_per_due_subscriber_and_records_its_papers(papers, outbox):
    ada = make_subscriber("ada@example.com")
    grace = make_subscriber("grace@example.com", "quantization")

    run = sending.run_digest_round(NOW)

    assert sent_to(outbox) == ["ada@example.com", "grace@example.com"]
    assert run.sent == 2 and run.finished_at is not None
    ada_papers = DeliveredPaper.objects.filter(delivery__subscriber=ada)
    assert [item.paper.title for item in ada_papers] == ["Sparse Mixture of Experts at Scale"]
    assert "mixture of experts" in ada_papers[0].why.lower()
    delivery = Delivery.objects.get(subscriber=grace)
    assert delivery.status == Delivery.Status.SENT and delivery.period == date(2026, 3, 2)
    email = next(e for e in read_outbox(outbox) if e["To"] == "grace@example.com")
    assert email["Message-ID"].strip() == delivery.message_id


def test_second_round_for_the_same_period_sends_nothing(papers, outbox):
    make_subscriber("ada@example.com")
    sending.run_digest_round(NOW)
    sending.run_digest_round(NOW + timedelta(hours=3))

    assert sent_to(outbox) == ["ada@example.com"]
    assert Delivery.objects.count() == 1


def test_subscriber_with_nothing_relevant_is_skipped_and_gets_no_email(papers, outbox):
    make_subscriber("ada@example.com", "volcanology")

    run = sending.run_digest_round(NOW)

    assert read_outbox(outbox) == []
    assert run.skipped == 1
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_nobody_is_planned_before_their_local_send_hour(papers, outbox):
    make_subscriber("tokyo@example.com", send_hour=19, time_zone="Asia/Tokyo")  # 18:30 there
    make_subscriber("lima@example.com", send_hour=5, time_zone="America/Lima")  # 04:30 there

    sending.run_digest_round(NOW)
    assert Delivery.objects.count() == 0

    sending.run_digest_round(NOW + timedelta(hours=1))
    assert sent_to(outbox) == ["lima@example.com", "tokyo@example.com"]


def test_inactive_subscribers_get_nothing(papers, outbox):
    make_subscriber("paused@example.com")
    Subscriber.objects.update(status=Subscriber.Status.PAUSED)
    sending.run_digest_round(NOW)
    assert Delivery.objects.count() == 0


def periods_planned_every_quarter_hour(start: datetime, hours: int) -> list[date]:
    for step in range(hours * 4):
        sending.plan_deliveries(start + timedelta(minutes=15 * step))
    return list(Delivery.objects.order_by("period").values_list("period", flat=True))


def test_spring_forward_day_neither_skipped_nor_doubled():
    # New York jumps from 02:00 to 03:00 on 8 March 2026: a 02:00 send hour does not exist.
    make_subscriber("ny@example.com", send_hour=2, time_zone="America/New_York")

    periods = periods_planned_every_quarter_hour(datetime(2026, 3, 7, 5, tzinfo=UTC), 72)

    assert periods == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    planned_at = DigestRun.objects.get(deliveries__period=date(2026, 3, 8)).now
    assert planned_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, right after the jump


def test_fall_back_day_neither_skipped_nor_doubled():
    # New York repeats 01:00-02:00 on 1 November 2026.
    make_subscriber("ny@example.com", send_hour=1, time_zone="America/New_York")

    periods = periods_planned_every_quarter_hour(datetime(2026, 10, 31, 4, tzinfo=UTC), 72)

    assert periods == [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]
    planned_at = DigestRun.objects.get(deliveries__period=date(2026, 11, 1)).now
    assert planned_at == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # the first 01:00 (EDT)


def test_weekly_subscriber_is_planned_only_on_their_weekday():
    make_subscriber(
        "weekly@example.com",
        frequency=Subscriber.Frequency.WEEKLY,
        weekday=Subscriber.Weekday.WEDNESDAY,
        time_zone="Europe/Berlin",
    )

    periods = periods_planned_every_quarter_hour(datetime(2026, 3, 1, 0, tzinfo=UTC), 24 * 14)

    assert periods == [date(2026, 3, 4), date(2026, 3, 11)]


@pytest.fixture
def planned(papers) -> list[int]:
    for name in ("ada", "grace", "alan"):
        make_subscriber(f"{name}@example.com")
    return sending.queue_run(sending.plan_deliveries(NOW))


class ScriptedBackend(BaseEmailBackend):
    """Raises the error scripted for an address, otherwise records the message."""

    def __init__(self, errors: dict[str, Exception] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.errors = errors or {}
        self.sent = []
        self.opened = 0

    def open(self) -> bool:
        self.opened += 1
        return True

    def send_messages(self, messages) -> int:
        for message in messages:
            error = self.errors.get(message.to[0])
            if error:
                raise error
            self.sent.append(message)
        return len(messages)


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
    assert sending.stalled_deliveries() == [planned[0]]
    backend = ScriptedBackend()
    assert sending.send_delivery(planned[0], connection=backend).outcome == Outcome.SENT
    delivery = Delivery.objects.get(pk=planned[0])
    assert backend.sent[0].extra_headers["Message-ID"] == delivery.message_id
    assert delivery.message_id == sending.message_id_for(delivery)  # the same on every attempt


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
    tomorrow = sending.plan_deliveries(NOW + timedelta(days=1))
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
    assert sending.is_transient(error) is transient


def test_retry_delay_doubles_with_jitter_up_to_a_cap(settings):
    settings.DIGEST_RETRY_BASE_SECONDS = 10
    settings.DIGEST_RETRY_MAX_SECONDS = 100
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        delays = {sending.retry_delay(attempts) for _ in range(50)}
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


def test_a_chunk_costs_a_few_queries_plus_one_per_message_to_mark_it_sent(papers):
    def queries_beyond_one_per_message(readers: list[str]) -> int:
        for name in readers:
            make_subscriber(f"{name}@example.com")
        ids = sending.queue_run(sending.plan_deliveries(NOW))
        with CaptureQueriesContext(connection) as queries:
            results = sending.send_deliveries(ids, connection=ScriptedBackend())
        assert len(results) == len(readers)
        assert {result.outcome for result in results.values()} == {Outcome.SENT}
        return len(queries) - len(ids)

    few = queries_beyond_one_per_message(["ada", "grace"])
    more = queries_beyond_one_per_message(["a1", "a2", "a3", "a4", "a5", "a6"])

    assert few == more <= 4  # the claim, and loading deliveries, their papers and subscribers


def test_deliveries_not_handed_over_when_the_server_is_down_are_put_back_for_later(planned):
    class Unreachable(ScriptedBackend):
        def open(self) -> bool:
            raise ConnectionRefusedError("connection refused")

    results = sending.send_deliveries(planned, connection=Unreachable())

    assert {result.outcome for result in results.values()} == {Outcome.RETRY}
    for delivery in Delivery.objects.all():
        assert (delivery.status, delivery.attempts) == ("planned", 0)
        assert delivery.next_attempt_at > timezone.now() and "refused" in delivery.error


@pytest.fixture
def smtp_server():
    """A local SMTP server (aiosmtpd, in a thread) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Keeping:
        def __init__(self) -> None:
            self.received: list[tuple[list[str], bytes]] = []

        async def handle_DATA(self, server, session, envelope) -> str:
            self.received.append((envelope.rcpt_tos, envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keeping()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, handler.received
    controller.stop()


def test_a_chunk_goes_over_one_smtp_connection_each_message_whole_and_marked_sent(
    planned, smtp_server
):
    from django.core.mail.backends.smtp import EmailBackend

    port, received = smtp_server
    backend = EmailBackend(host="127.0.0.1", port=port)

    results = sending.send_deliveries(planned, connection=backend)

    assert {result.outcome for result in results.values()} == {Outcome.SENT}
    parsed = [email.message_from_bytes(content) for _, content in received]
    message_ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    assert {message["To"]: message["Message-ID"] for message in parsed} == message_ids
    assert [rcpt_tos for rcpt_tos, _ in received] == [[message["To"]] for message in parsed]
    html = next(part for part in parsed[0].walk() if part.get_content_type() == "text/html")
    assert "Sparse Mixture of Experts at Scale" in html.get_payload(decode=True).decode()


def test_smtp_messages_are_multipart_alternative_with_a_boundary_of_their_own(planned, smtp_server):
    from django.core.mail.backends.smtp import EmailBackend

    port, received = smtp_server
    sending.send_deliveries(planned, connection=EmailBackend(host="127.0.0.1", port=port))

    parsed = [email.message_from_bytes(content) for _, content in received]
    assert [message.get_content_type() for message in parsed] == ["multipart/alternative"] * 3
    assert len({message.get_boundary() for message in parsed}) == 3
    for message in parsed:
        parts = [part.get_content_type() for part in message.walk()][1:]
        assert parts == ["text/plain", "text/html"]


def test_a_boundary_that_occurs_in_the_message_is_not_used(monkeypatch):
    message = EmailMessage(body="a line with ==taken== in it")
    tokens = iter(["taken", "free"])
    monkeypatch.setattr(sending.secrets, "token_hex", lambda size: next(tokens))

    assert sending.fresh_boundary(message) == "==free=="


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Subject", "List-Unsubscribe", "X"]),
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
        st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=120),
    ),
)
def test_short_ascii_headers_are_written_exactly_as_compat32_would(name, value):
    policy = sending.SHORT_HEADERS_AS_IS.clone(linesep="\r\n")

    assert policy.fold_binary(name, value) == compat32.clone(linesep="\r\n").fold_binary(
        name, value
    )


def test_subscriber_who_unsubscribed_after_planning_gets_nothing(planned, outbox):
    Subscriber.objects.filter(email="ada@example.com").update(status=Subscriber.Status.UNSUBSCRIBED)

    sending.send_deliveries(planned)

    assert sent_to(outbox) == ["alan@example.com", "grace@example.com"]
    assert Delivery.objects.get(subscriber__email="ada@example.com").status == "skipped"


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_paper_hidden_after_planning_is_left_out_of_the_email_and_its_record(outbox):
    make_paper("Sparse Mixture of Experts at Scale", "A mixture of experts routes tokens.")
    spam = make_paper("Mixture of Experts, Buy Now", "A mixture of experts for sale.")
    ada = make_subscriber("ada@example.com")
    [delivery] = sending.queue_run(sending.plan_deliveries(NOW))
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


def test_papers_of_a_digest_still_retrying_are_not_picked_again_the_next_day(papers, outbox):
    make_subscriber("ada@example.com")
    first_day = sending.queue_run(sending.plan_deliveries(NOW))
    busy = ScriptedBackend({"ada@example.com": api_error(503)})
    assert sending.send_deliveries(first_day, connection=busy)[first_day[0]].outcome == (
        Outcome.RETRY
    )

    next_day = sending.plan_deliveries(NOW + timedelta(days=1))
    Delivery.objects.filter(pk__in=first_day).update(next_attempt_at=timezone.now())  # retry due
    sending.send_deliveries(first_day + sending.queue_run(next_day))

    # The retried digest brings the paper; the next day's has nothing else to say.
    [email] = read_outbox(outbox)
    assert "Sparse Mixture of Experts at Scale" in text_of(email)
    assert list(Delivery.objects.order_by("period").values_list("status", flat=True)) == [
        Delivery.Status.SENT,
        Delivery.Status.SKIPPED,
    ]
    assert DeliveredPaper.objects.filter(delivery__subscriber__email="ada@example.com").count() == 1


def test_retry_failed_gives_failed_deliveries_new_attempts(planned):
    backend = ScriptedBackend({"ada@example.com": api_error(422)})
    sending.send_deliveries(planned, connection=backend)
    ada = Delivery.objects.get(subscriber__email="ada@example.com").pk

    assert sending.retry_failed([ada]) == 1
    assert sending.send_delivery(ada, connection=ScriptedBackend()).outcome == Outcome.SENT


def test_lost_queued_deliveries_are_queued_again(planned, settings):
    settings.DIGEST_REQUEUE_AFTER_SECONDS = 60
    assert sending.stalled_deliveries() == []
    Delivery.objects.update(
        created_at=timezone.now() - timedelta(minutes=5),
        next_attempt_at=timezone.now() - timedelta(minutes=2),
    )
    assert sending.stalled_deliveries() == planned
    assert sending.stalled_deliveries() == []  # queued again just now


def test_plan_and_send_task_sends_everything_due(papers, outbox, monkeypatch):
    from config.celery import app
    from digest.tasks import plan_and_send

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # in-process, even with a broker
    make_subscriber("ada@example.com")
    plan_and_send.delay(NOW.isoformat())

    assert sent_to(outbox) == ["ada@example.com"]
    assert DigestRun.objects.get().sent == 1


def test_dry_run_composes_but_sends_and_records_nothing(papers, outbox, capsys):
    make_subscriber("ada@example.com")

    call_command("send_digests", "--now", NOW.isoformat(), "--dry-run")

    assert read_outbox(outbox) == []
    assert Delivery.objects.count() == 0 and DigestRun.objects.count() == 0
    assert "would send 1" in capsys.readouterr().out


def test_send_digests_prints_who_got_what(papers, outbox, capsys):
    make_subscriber("ada@example.com")
    make_subscriber("bob@example.com", "volcanology")

    call_command("send_digests", "--now", "2026-03-02T09:30:00+00:00")

    out = capsys.readouterr().out
    assert "ada@example.com" in out and "Sparse Mixture of Experts at Scale" in out
    assert "sent 1, skipped 1" in out
    assert sent_to(outbox) == ["ada@example.com"]


class FailsFirstTime(BaseEmailBackend):
    """Turns each address away once with a temporary error, then takes its messages."""

    turned_away: set[str] = set()
    delivered: list[str] = []

    def send_messages(self, messages) -> int:
        for message in messages:
            if message.to[0] not in self.turned_away:
                self.turned_away.add(message.to[0])
                raise smtplib.SMTPServerDisconnected("try again later")
            self.delivered.append(message.to[0])
        return len(messages)


def test_send_digests_says_what_waits_for_a_retry_and_sends_it_once_due(
    papers, settings, monkeypatch, capsys
):
    settings.EMAIL_BACKEND = f"{__name__}.FailsFirstTime"
    monkeypatch.setattr(FailsFirstTime, "turned_away", set())
    monkeypatch.setattr(FailsFirstTime, "delivered", [])
    make_subscriber("ada@example.com")

    call_command("send_digests", "--now", "2026-03-02T09:30:00+00:00")
    first = capsys.readouterr().out
    call_command("send_digests", "--now", "2026-03-02T09:35:00+00:00")  # retry not due yet
    too_early, delivered_too_early = capsys.readouterr().out, list(FailsFirstTime.delivered)
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    call_command("send_digests", "--now", "2026-03-02T09:40:00+00:00")
    due = capsys.readouterr().out

    assert "sent 0," in first and "1 waiting to retry" in first
    assert "1 waiting to retry" in too_early and delivered_too_early == []
    assert "also sent 1 retried from earlier rounds" in due and "waiting" not in due
    assert FailsFirstTime.delivered == ["ada@example.com"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


@pytest.mark.parametrize("hour", [0, 6, 13, 23])
def test_every_sample_reader_gets_a_digest_whatever_the_hour_the_demo_runs(hour, outbox):
    call_command("ingest", *sorted(str(p) for p in (PROJECT_DIR / "samples/dumps").glob("*.txt")))
    call_command("import_subscribers", str(PROJECT_DIR / "samples" / "subscribers.csv"))
    now = datetime(2026, 3, 2, hour, 15, tzinfo=UTC)
    Paper.objects.update(first_seen=now - timedelta(minutes=10))

    run = sending.run_digest_round(now)

    readers = set(Subscriber.objects.values_list("email", flat=True))
    assert {email["To"] for email in read_outbox(outbox)} == readers
    assert run.sent == 6 and all(row.papers >= 3 for row in run.report)


def test_a_tick_with_nobody_due_leaves_no_run_behind(papers, capsys):
    make_subscriber("late@example.com", send_hour=23)

    call_command("send_digests", "--now", NOW.isoformat())

    assert DigestRun.objects.count() == 0 and Delivery.objects.count() == 0
    assert "Nobody is due" in capsys.readouterr().out


def test_esp_message_id_is_recorded_when_the_esp_gives_one(papers, settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    make_subscriber("ada@example.com")

    sending.run_digest_round(NOW)

    [message] = mail.outbox
    delivery = Delivery.objects.get()
    assert delivery.esp_message_id == str(message.anymail_status.message_id) != ""


def test_postmark_answers_are_sorted_into_sent_and_retry_later(papers, settings):
    from tests.digest.test_sending_worker import FakePostmark

    server = FakePostmark(failure_rate=0.5)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test", "POSTMARK_API_URL": server.url}
    for n in range(20):
        make_subscriber(f"reader{n}@example.com")
    try:
        results = sending.send_deliveries(sending.queue_run(sending.plan_deliveries(NOW)))
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
