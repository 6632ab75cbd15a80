"""send_digests from cron, without beat: a rerun after any kill finishes the day
(digest/sending.py left_over_deliveries, the send_digests command)."""

import random
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from digest.delivery import planning
from digest.models import Delivery, IngestRun, Paper
from subscriptions.models import Subscriber
from tests import conftest
from tests.conftest import PROJECT_DIR, read_outbox

sys.path.insert(0, str(PROJECT_DIR / "bench"))
import kill_send  # noqa: E402 - a bench script, found on the path set just above

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def due() -> list[Subscriber]:
    Paper.objects.create(
        title="Sparse Mixture of Experts at Scale",
        title_key="sparse mixture of experts at scale",
        abstract="We train a mixture of experts model.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    return [
        Subscriber.objects.create(
            email=f"reader{n}@example.com",
            topics="mixture of experts",
            status=Subscriber.Status.ACTIVE,
            send_hour=7,
        )
        for n in range(3)
    ]


def sent_to(outbox) -> list[str]:
    return sorted(str(message["To"]) for message in read_outbox(outbox))


def test_a_rerun_sends_what_a_killed_run_planned_but_never_queued(due, outbox):
    planning.plan_deliveries(NOW)  # killed right after planning committed

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert sent_to(outbox) == [s.email for s in due]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_a_rerun_takes_over_claims_older_than_the_claim_timeout(due, outbox, settings, capsys):
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    # Killed mid-chunk: all three claimed, none sent; one claim is fresh (another process may
    # still be sending it), two are older than the timeout.
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.SENDING, claimed_at=timezone.now() - timedelta(seconds=61)
    )
    Delivery.objects.filter(pk=ids[0]).update(claimed_at=timezone.now())

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert sent_to(outbox) == [due[1].email, due[2].email]
    assert "1 being sent by another process" in capsys.readouterr().out
    assert Delivery.objects.get(pk=ids[0]).status == Delivery.Status.SENDING


def test_a_retry_not_yet_due_is_not_sent_early_by_a_rerun(due, outbox):
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    Delivery.objects.filter(pk__in=ids).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    call_command("send_digests", "--now", (NOW + timedelta(minutes=1)).isoformat())

    assert read_outbox(outbox) == []


def test_send_digests_marks_an_ingest_killed_mid_run_failed(capsys):
    # The run of an ingest whose process was SIGKILLed: still "running", its process gone.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = IngestRun.objects.create(
        source="samples/dumps/000.txt",
        format="daily-text",
        host=socket.gethostname(),
        pid=dead.pid,
        heartbeat_at=timezone.now(),
    )

    call_command("send_digests", "--now", NOW.isoformat())

    run.refresh_from_db()
    assert run.status == IngestRun.Status.FAILED and run.finished_at is not None
    assert f"its process ({dead.pid} on {socket.gethostname()}) ended" in run.error
    assert f"ingest run {run.pk} of samples/dumps/000.txt: interrupted" in capsys.readouterr().out


# The real thing: SIGKILL a real `manage.py send_digests` at random points, then rerun it.

KILL_READERS = 2000
KILLS = 5


def assert_every_reader_got_exactly_one_email(report: kill_send.KillReport, seed: int) -> None:
    context = f"seed {seed}: {report.line()}; final run said: {report.final_output[-400:]}"
    assert report.kills == KILLS, context
    assert report.missing == 0, context
    assert set(report.per_reader.values()) == {1}, context
    assert len(report.per_reader) == KILL_READERS, context
    assert report.statuses == {"sent": KILL_READERS}, context
    assert report.runs_unfinished == 0, context


def test_send_digests_killed_five_times_then_rerun_sends_every_reader_one_email_on_sqlite(
    tmp_path,
):
    seed = random.randrange(1_000_000)

    report = kill_send.kill_and_finish(
        f"sqlite:///{tmp_path / 'kill.sqlite3'}",
        tmp_path,
        readers=KILL_READERS,
        kills=KILLS,
        seed=seed,
        migrate=True,
    )

    assert_every_reader_got_exactly_one_email(report, seed)


@pytest.mark.services
def test_send_digests_killed_five_times_then_rerun_sends_every_reader_one_email_on_postgres(
    services, transactional_db, tmp_path
):
    seed = random.randrange(1_000_000)

    report = kill_send.kill_and_finish(
        conftest.test_database_url(),  # the database this test run created
        tmp_path,
        readers=KILL_READERS,
        kills=KILLS,
        seed=seed,
        migrate=False,
    )

    assert_every_reader_got_exactly_one_email(report, seed)
