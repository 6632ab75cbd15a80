"""A month in the life of Paperboy, through the real entry points.

30 days from 2026-03-20 (Israel springs forward on the 27th, Europe on the 29th; Australia, New
Zealand and Chile fall back on 5 April). Every day a listing is ingested (the `ingest` command on
even days, the `ingest_sources` task on odd ones; once the same file twice), beat's
`plan_and_send` ticks every simulated hour, readers pause, resume, change topics and move time
zone on their preference page, unsubscribe in one click, bounce through the ESP's webhook, sign
up (and come back) through the form and the confirmation link, and an editor hides, pins and
merges papers in the admin, and a reader rates papers from a digest's links and pastes "Papers
like these" on their preference page (a paper rated is never sent to them after), and a script
floods one reader's rating link past the limit (429s, nothing recorded, the digests go on).
Readers sit in 19 time zones (30- and 45-minute offsets, DST steps both ways, a 30-minute DST
step on Lord Howe), daily and weekly.

The clock is Django's `timezone.now`, which every module reads; the planner is given the same
moment. After each day the test checks, against its own account of who is due when, the rows
and the emails: one digest or skip per active reader and period, no paper twice to a reader,
nothing to a reader after they stopped, every run finished, nothing logged at ERROR.

One test, two ways: in-process with eager Celery on the embedded defaults, writing every email to
the outbox folder, and, when a broker is configured (CI's services pass, on PostgreSQL), with a
real Celery worker sending every digest over SMTP to a local server, which files each message it
accepts in the same folder (so the month also proves the SMTP path that marks a message sent
right before its last line, day after day). The planner runs in-process, as beat's task would,
so the clock holds for planning; the worker's clock is real, and sending never compares it with
the plan.
"""

import logging
import re
import time as monotonic_time

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from digest.matching.semantic import configured_model, paper_text
from digest.matching.vectors import text_hash
from digest.models import Delivery, DigestRun, Paper
from tests.simulation.cast import (
    BACKEND,
    DAYS,
    START,
    WEBHOOK_SECRET,
)
from tests.simulation.month import Clock, ErrorLog, Month

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def errors():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def month_settings(settings, outbox, monkeypatch):
    settings.EMAIL_BACKEND = BACKEND
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    clock = Clock(START)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.mark.django_db(transaction=True)  # the worker reads what the test commits
def test_a_month(request, month_settings, settings, outbox, tmp_path, errors, report):
    """Eager Celery on the embedded defaults; a real worker when CELERY_BROKER_URL is set (the
    services pass of CI, on PostgreSQL)."""
    if not settings.CELERY_BROKER_URL:
        # Ticks with more than 4 readers due are planned in slices (plan_slice, eager here). Not
        # with a worker: a slice planned there would stamp its rows with the worker's real clock.
        settings.DIGEST_PLAN_SLICE = 4
        line = run_month(month_settings, settings, outbox, tmp_path, errors, drain=lambda: None)
        rounds = DigestRun.objects.values("now").annotate(n=Count("pk"))
        assert max(row["n"] for row in rounds) > 1, "no tick was planned in slices"
        report(f"{line} ({connection.vendor}, eager Celery)")
        return
    smtp_server = request.getfixturevalue("smtp_server")
    smtp_server.mailbox = outbox
    # The worker sends the digests there, and this process the consent emails.
    settings.EMAIL_BACKEND, settings.EMAIL_HOST = SMTP_BACKEND, "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    worker = request.getfixturevalue("celery_worker_process")
    worker.env.update(
        EMAIL_BACKEND=SMTP_BACKEND, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_server.port)
    )
    worker.start()
    line = run_month(month_settings, settings, outbox, tmp_path, errors, drain=until_done)
    problems = [line for line in worker.log if re.search(r"ERROR|CRITICAL|Traceback", line)]
    assert not problems, "".join(problems)
    assert len(smtp_server.received) == len(list(outbox.glob("*.eml")))
    report(f"{line} ({connection.vendor}, a real Celery worker sending over SMTP)")


def run_month(clock, settings, outbox, tmp_path, errors, *, drain) -> str:
    month = Month(outbox=outbox, tmp_path=tmp_path, clock=clock, settings=settings, drain=drain)
    return month.run(DAYS, errors)


def until_done(timeout: float = 60) -> None:
    """Wait for the worker to send what was queued (nothing is left planned or sending) and to
    embed every paper as it now reads."""
    deadline = monotonic_time.monotonic() + timeout
    pending = Delivery.objects.filter(status__in=[Delivery.Status.PLANNED, Delivery.Status.SENDING])
    while pending.exists():
        assert monotonic_time.monotonic() < deadline, "the worker left deliveries unsent"
        monotonic_time.sleep(0.02)
    while unembedded_papers():
        assert monotonic_time.monotonic() < deadline, "the worker left papers unembedded"
        monotonic_time.sleep(0.02)


def unembedded_papers() -> int:
    """Papers without a vector of their current text (none to wait for with the model off)."""
    if configured_model() is None:
        return 0
    rows = Paper.objects.values_list("title", "abstract", "embedding__text_hash")
    stale = 0
    for title, abstract, embedded_hash in rows:
        stale += embedded_hash != text_hash(paper_text(title, abstract))
    return stale
