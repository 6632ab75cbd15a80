"""Real Celery workers on PostgreSQL send a day's digests while workers are SIGKILLed at random.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/kill_workers.py \\
        [--readers 5000] [--workers 4] [--kills 8] [--seed 1] [--json]

Plans a digest for every reader in a fresh database (`scale_day_bench`, or $BENCH_DATABASE),
queues them in chunks, and starts the workers; while they send to a local SMTP sink it kills a
random worker (its whole process group, SIGKILL) every 0.5-2 s and starts a new one, `--kills`
times. As beat would, it queues again every few seconds the deliveries whose worker died
(claims older than DIGEST_CLAIM_TIMEOUT_SECONDS, here 4 s; tasks lost with their worker after
30 s). Then it counts what the sink got, per reader and per Message-ID, and prints:

    readers 5000, kills 8: sent 5000, lost 0, readers with 2 or more copies 0 (…)

The sink keeps a message once it has read its ".", as an MTA does (bench/mta_sink.py says why
not aiosmtpd). "Copies" counts every message the sink accepted; "distinct Message-IDs per
reader" counts them as a mailbox provider does, which drops a second copy with the same
Message-ID.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from day import start_worker
from ingest import write_dump
from mta_sink import serve_recording_smtp
from scratch_database import scratch_database
from smtp import start_sink

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLAIM_TIMEOUT_SECONDS = 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/kill_workers.py needs DATABASE_URL pointing at PostgreSQL")
    with scratch_database(os.environ.get("BENCH_DATABASE", "scale_day_bench")) as tmp:
        log_path = str(tmp / "received.tsv")
        sink, _ = start_sink(serve_recording_smtp, log_path)
        os.environ.update(
            DEBUG="0",
            DJANGO_SETTINGS_MODULE="config.settings",
            DIGEST_CLAIM_TIMEOUT_SECONDS=str(CLAIM_TIMEOUT_SECONDS),
            DIGEST_REQUEUE_AFTER_SECONDS="30",
            DIGEST_RETRY_BASE_SECONDS="1",
            DIGEST_RETRY_MAX_SECONDS="2",
        )
        try:
            report = run(options, tmp, log_path)
        finally:
            sink.terminate()
    if options.json:
        print(json.dumps(report))
    else:
        print(
            f"readers {report['readers']:,}, kills {report['kills']}: sent {report['sent']:,}, "
            f"lost {report['lost']}, readers with 2 or more copies {report['copied']} "
            f"({report['extra_copies']} extra copies), readers with 2 or more distinct "
            f"Message-IDs {report['distinct_twice']}; statuses {report['statuses']}; "
            f"{report['seconds']:.0f} s"
        )


def run(options, tmp: Path, log_path: str) -> dict:
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from config.celery import app
    from digest import tasks
    from digest.delivery import planning
    from digest.ingest import ingest
    from digest.models import Delivery
    from subscriptions.models import Subscriber

    call_command("migrate", verbosity=0)
    app.control.purge()
    write_dump(tmp / "dump.txt", 300)
    ingest(str(tmp / "dump.txt"))
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.com",
            topics=["sparse experts", "language model", "diffusion", "graph neural"][n % 4],
            status=Subscriber.Status.ACTIVE,
            send_hour=0,
        )
        for n in range(options.readers)
    )
    ids = planning.queue_run(planning.plan_deliveries(timezone.now()))
    rng = random.Random(options.seed)
    env = dict(os.environ)
    workers = [start_worker(env) for _ in range(options.workers)]
    started = time.perf_counter()
    tasks.queue_sends(ids)
    kills, next_kill, next_requeue = 0, time.monotonic() + rng.uniform(0.5, 2), 0.0
    deadline = time.monotonic() + 1800
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            if kills < options.kills and now >= next_kill:
                victim = rng.randrange(len(workers))
                os.killpg(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_worker(env)
                kills += 1
                next_kill = now + rng.uniform(0.5, 2)
            if now >= next_requeue:  # as beat's plan_and_send does every few minutes
                tasks.queue_sends(planning.stalled_deliveries())
                next_requeue = now + 2
            open_ = Delivery.objects.filter(status__in=["planned", "sending"]).count()
            if open_ == 0 and kills >= options.kills:
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
    time.sleep(0.5)
    lines = [line.split("\t") for line in Path(log_path).read_text().splitlines()]
    copies = Counter(rcpt for rcpt, _ in lines)
    distinct = Counter(rcpt for rcpt, _ in set(map(tuple, lines)))
    statuses = dict(Counter(Delivery.objects.values_list("status", flat=True)))
    emails = set(Subscriber.objects.values_list("email", flat=True))
    connection.close()
    return {
        "readers": options.readers,
        "kills": kills,
        "sent": statuses.get("sent", 0),
        "lost": len(emails - set(copies)),
        "copied": sum(1 for count in copies.values() if count > 1),
        "extra_copies": sum(count - 1 for count in copies.values()),
        "distinct_twice": sum(1 for count in distinct.values() if count > 1),
        "statuses": statuses,
        "seconds": seconds,
    }


if __name__ == "__main__":
    main()
