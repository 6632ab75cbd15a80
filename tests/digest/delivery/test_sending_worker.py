"""Sending under fire, with a real Celery worker on the real Redis and PostgreSQL: 2,000 readers,
the worker SIGKILLed at random moments and restarted (while it plans them in slices of 250 and
sends), or an ESP that fails 20% of the time.

Beat's role (running plan_and_send every few minutes) is played by the test, which nudges the
planner whenever progress stalls; claims and lost tasks time out after seconds here, not minutes.
"""

import json
import random
import signal
import threading
import time
import uuid
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.server import ThreadingHTTPServer

import pytest
from django.db.models import Count
from django.utils import timezone

from digest.models import Delivery, DigestRun, Paper
from digest.tasks import plan_and_send
from subscriptions.models import Subscriber
from tests.conftest import QuietHandler

pytestmark = pytest.mark.services

READERS = 2_000
FAST_RECOVERY = {
    "DIGEST_CLAIM_TIMEOUT_SECONDS": "3",
    "DIGEST_REQUEUE_AFTER_SECONDS": "3",
    "DIGEST_RETRY_BASE_SECONDS": "0.2",
    "DIGEST_RETRY_MAX_SECONDS": "2",
    "DIGEST_MAX_ATTEMPTS": "40",
    "DIGEST_SEND_CHUNK": "25",
}


def make_readers() -> set[str]:
    now = timezone.now()
    for title in ("Sparse Mixture of Experts at Scale", "Routing Tokens to Experts"):
        Paper.objects.create(
            title=title,
            title_key=title.lower(),
            abstract="We train a mixture of experts model. Tokens are routed to experts.",
            first_seen=now - timedelta(hours=1),
            last_seen=now,
        )
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.com",
            topics="mixture of experts",
            status=Subscriber.Status.ACTIVE,
            send_hour=0,  # due at any hour of the day
        )
        for n in range(READERS)
    )
    return {f"reader{n}@example.com" for n in range(READERS)}


def sent_count() -> int:
    return Delivery.objects.filter(status=Delivery.Status.SENT).count()


def wait_until_all_sent(deadline_seconds: float = 240) -> None:
    """Play beat: nudge the planner (which also queues stalled deliveries again) while stuck."""
    deadline = time.monotonic() + deadline_seconds
    last, last_change = -1, time.monotonic()
    while (count := sent_count()) < READERS:
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 3:
            plan_and_send.delay()
            last_change = time.monotonic()
        assert time.monotonic() < deadline, f"only {count} of {READERS} sent"
        time.sleep(0.5)


def kill_and_restart(worker, *, times: int) -> int:
    """SIGKILL the worker (pool and all) at random moments; returns how many kills landed while
    digests were still going out."""
    rng = random.Random()
    during_run = 0
    for _ in range(times):
        time.sleep(rng.uniform(0.2, 1.5))
        during_run += sent_count() < READERS
        worker.kill(signal.SIGKILL)
        worker.start()
    return during_run


def assert_one_sent_delivery_each(readers: set[str]) -> None:
    per_reader = Delivery.objects.values("subscriber__email").annotate(n=Count("pk"))
    assert {row["subscriber__email"] for row in per_reader} == readers
    assert {row["n"] for row in per_reader} == {1}
    assert not Delivery.objects.exclude(status=Delivery.Status.SENT).exists()


def test_worker_killed_five_times_still_sends_exactly_one_digest_each(
    celery_worker_process, outbox
):
    readers = make_readers()
    worker = celery_worker_process
    worker.concurrency = 2
    worker.env.update(FAST_RECOVERY, DIGEST_PLAN_SLICE="250")  # the kills land in slices too
    worker.start()
    plan_and_send.delay()

    kills_during_run = kill_and_restart(worker, times=5)
    wait_until_all_sent()

    assert kills_during_run >= 3  # the kills landed while digests were going out
    assert_one_sent_delivery_each(readers)
    assert DigestRun.objects.count() >= READERS // 250  # planned in slices, a round each
    parser = BytesHeaderParser(policy=default_policy)
    headers = [parser.parsebytes(path.read_bytes()) for path in outbox.glob("*.eml")]
    assert sorted(h["To"] for h in headers) == sorted(readers)  # exactly one email each
    message_ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    assert all(h["Message-ID"].strip() == message_ids[h["To"]] for h in headers)


class FakePostmark(ThreadingHTTPServer):
    """Postmark's /email endpoint on 127.0.0.1: fails a share of requests with 500 or 429 (and
    records nothing for them), accepts and records the rest."""

    def __init__(self, failure_rate: float) -> None:
        super().__init__(("127.0.0.1", 0), FakePostmarkHandler)
        self.failure_rate = failure_rate
        self.accepted: list[dict] = []
        self.failures = 0
        self.lock = threading.Lock()
        self.rng = random.Random()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class FakePostmarkHandler(QuietHandler):
    server: FakePostmark
    protocol_version = "HTTP/1.1"  # keep-alive, so a chunk reuses its connection like with Postmark
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            fail = self.server.rng.random() < self.server.failure_rate
            if fail:
                self.server.failures += 1
                status = self.server.rng.choice([500, 429])
                answer = {"ErrorCode": 100, "Message": "Try again later"}
            else:
                status = 200
                answer = {
                    "To": payload["To"],
                    "SubmittedAt": timezone.now().isoformat(),
                    "MessageID": str(uuid.uuid4()),
                    "ErrorCode": 0,
                    "Message": "OK",
                }
                headers = {h["Name"]: h["Value"] for h in payload.get("Headers", [])}
                self.server.accepted.append({**answer, "Message-ID": headers.get("Message-ID")})
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_esp():
    server = FakePostmark(failure_rate=0.2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def start_worker_on(worker, fake_esp: FakePostmark) -> None:
    worker.concurrency = 2
    worker.env.update(
        FAST_RECOVERY,
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="test-server-token",
        ANYMAIL_POSTMARK_API_URL=fake_esp.url,
    )
    worker.start()


def test_esp_failing_a_fifth_of_sends_still_delivers_exactly_one_digest_each(
    celery_worker_process, fake_esp
):
    readers = make_readers()
    worker = celery_worker_process
    start_worker_on(worker, fake_esp)
    plan_and_send.delay()

    wait_until_all_sent()

    assert_one_sent_delivery_each(readers)
    accepted = fake_esp.accepted
    assert sorted(message["To"] for message in accepted) == sorted(readers)
    assert fake_esp.failures > READERS * 0.1  # the ESP really did fail a fifth of the time
    esp_ids = dict(Delivery.objects.values_list("subscriber__email", "esp_message_id"))
    message_ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    for message in accepted:
        assert esp_ids[message["To"]] == message["MessageID"]
        assert message_ids[message["To"]] == message["Message-ID"]
    assert Delivery.objects.filter(attempts__gt=1).count() > READERS * 0.1


def test_flaky_esp_and_killed_worker_hand_over_again_only_what_may_have_been_accepted(
    celery_worker_process, fake_esp
):
    """The guarantee with an ESP that cannot deduplicate: exactly one sent delivery each; a
    copy reaches the ESP again only when a kill lands between its acceptance and our commit, at
    most one per pool process per kill with each message marked sent on its own
    (DIGEST_MARK_SENT_EVERY=1; by default a chunk's marks are one write, and a kill may hand over
    a chunk's accepted messages again), and always under the reader's one Message-ID."""
    readers = make_readers()
    worker = celery_worker_process
    worker.env["DIGEST_MARK_SENT_EVERY"] = "1"
    start_worker_on(worker, fake_esp)
    plan_and_send.delay()

    kills_during_run = kill_and_restart(worker, times=5)
    wait_until_all_sent()

    assert kills_during_run >= 3
    assert_one_sent_delivery_each(readers)
    accepted = fake_esp.accepted
    assert {message["To"] for message in accepted} == readers
    message_ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    assert all(message["Message-ID"] == message_ids[message["To"]] for message in accepted)
    handed_over_again = len(accepted) - len(readers)
    assert handed_over_again <= 5 * worker.concurrency
