"""Fenced claims (issue 22, item 7): with the clock jumping forward or an ESP slower than the claim
timeout, a second sender on the same deliveries sends nothing twice, and a worker whose claim was
taken over hands nothing more to the ESP. The second sender runs inside the first one's ESP call,
at a chosen message, so each interleaving is the same on every run."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.utils import timezone

from digest.delivery import claims, planning, sending
from digest.delivery.sending import Outcome
from digest.models import Delivery
from tests.digest.delivery.delivery_records import NOW, make_subscriber

# The other sender runs in the first one's sender thread, on a connection of its own.
pytestmark = pytest.mark.django_db(transaction=True)


class JumpingClock:
    def __init__(self) -> None:
        self.real_now = timezone.now
        self.offset = timedelta(0)

    def __call__(self):
        return self.real_now() + self.offset


class RecordingESP(BaseEmailBackend):
    """Accepts everything into a log shared by the senders; `on_message(n)` runs as it accepts
    its n-th message, `seconds` is how long each one takes."""

    def __init__(self, name: str, log: list, *, on_message=None, seconds: float = 0.0) -> None:
        super().__init__()
        self.name, self.log, self.on_message, self.seconds = name, log, on_message, seconds
        self.accepted = 0

    def send_messages(self, messages) -> int:
        for message in messages:
            time.sleep(self.seconds)
            self.log.append((self.name, message.to[0], message.extra_headers["Message-ID"]))
            self.accepted += 1
            if self.on_message:
                self.on_message(self.accepted)
        return len(messages)


@pytest.fixture
def clock(monkeypatch) -> JumpingClock:
    clock = JumpingClock()
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def plan_readers(count: int) -> list[int]:
    for n in range(count):
        make_subscriber(f"reader{n:03}@example.com")
    return planning.queue_run(planning.plan_deliveries(NOW))


def rival_sender(ids: list[int], log: list) -> dict:
    """A second worker (a redelivered task, the stalled-claims recovery) on the same ids."""
    try:
        return sending.send_deliveries(ids, connection=RecordingESP("rival", log))
    finally:
        connection.close()  # this thread's own connection


def copies_by_reader(log: list) -> Counter:
    return Counter(to for _, to, _ in log)


def test_a_clock_jump_past_the_timeout_lets_no_other_worker_send_a_digest_again(
    papers, clock, settings
):
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    ids = plan_readers(30)
    log: list = []
    rival_results: list[dict] = []

    def on_message(n: int) -> None:
        if n == 10:
            clock.offset += timedelta(seconds=120)
        if n == 12:  # a little later, another worker looks for stale claims
            rival_results.append(rival_sender(ids, log))

    sending.send_deliveries(ids, connection=RecordingESP("first", log, on_message=on_message))

    assert set(copies_by_reader(log).values()) == {1} and len(log) == 30
    assert {result.outcome for result in rival_results[0].values()} == {Outcome.NOT_CLAIMED}
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 30


@pytest.mark.parametrize(("mark_sent_every", "sent_twice"), [(1, 1), (0, 10)])
def test_a_worker_whose_claim_was_taken_over_hands_nothing_more_to_the_esp(
    papers, clock, settings, mark_sent_every, sent_twice
):
    """The worst moment: the clock jumps and the other worker takes over while the first one's
    10th message is with the ESP. What the ESP accepted but was not yet marked sent goes twice,
    each with one Message-ID (mailbox providers drop the copy): the message in flight when sent
    marks are written every message, the chunk's 10 accepted so far when they are written once a
    chunk (the default). The first worker hands over nothing after it."""
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    settings.DIGEST_MARK_SENT_EVERY = mark_sent_every
    ids = plan_readers(30)
    log: list = []

    def on_message(n: int) -> None:
        if n == 10:
            clock.offset += timedelta(seconds=120)
            rival_sender(ids, log)

    first = RecordingESP("first", log, on_message=on_message)
    results = sending.send_deliveries(ids, connection=first)

    assert first.accepted == 10
    twice = [reader for reader, copies in copies_by_reader(log).items() if copies > 1]
    assert len(twice) == sent_twice and len(copies_by_reader(log)) == 30
    assert all(len({mid for _, to, mid in log if to == reader}) == 1 for reader in twice)
    assert sum(result.outcome == Outcome.NOT_CLAIMED for result in results.values()) == 20
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 30


def test_an_esp_slower_than_the_claim_timeout_keeps_its_claims_alive(papers, settings):
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 2
    ids = plan_readers(10)  # 3 seconds of sending at 0.3 s a message
    log: list = []
    rival_results: list[dict] = []

    def on_message(n: int) -> None:
        if n in (4, 7, 9):
            rival_results.append(rival_sender(ids, log))

    sending.send_deliveries(
        ids, connection=RecordingESP("first", log, on_message=on_message, seconds=0.3)
    )

    assert set(copies_by_reader(log).values()) == {1} and len(log) == 10
    assert {r.outcome for results in rival_results for r in results.values()} == {
        Outcome.NOT_CLAIMED
    }
    sent = Delivery.objects.filter(status=Delivery.Status.SENT)
    assert sent.count() == 10 and set(sent.values_list("attempts", flat=True)) == {1}


def test_what_the_esp_accepted_is_marked_sent_though_another_worker_took_the_claim_over(
    papers, clock, settings
):
    """The other worker takes the chunk over while its last message is with the ESP, before it
    hands anything over itself: the chunk is marked sent by the first worker all the same, so the
    other one, fenced by the sent rows, sends nothing."""
    settings.DIGEST_MARK_SENT_EVERY = 0  # the chunk marked sent in one write, at its end
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    ids = plan_readers(5)
    log: list = []
    taken_over: list[set[int]] = []

    def on_message(n: int) -> None:
        if n == 5:
            clock.offset += timedelta(seconds=120)
            try:
                taken_over.append(claims.claim(ids, timezone.now(), claims.new_token()))
            finally:
                connection.close()  # this thread's own connection

    sending.send_deliveries(ids, connection=RecordingESP("first", log, on_message=on_message))
    rival = sending.send_deliveries(ids, connection=RecordingESP("rival", log))

    assert taken_over == [set(ids)]
    sent = Delivery.objects.filter(status=Delivery.Status.SENT)
    assert set(sent.values_list("message_id", flat=True)) == {mid for _, _, mid in log}
    assert sent.count() == len(log) == 5
    assert {result.outcome for result in rival.values()} == {Outcome.NOT_CLAIMED}
