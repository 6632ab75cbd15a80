"""A whole day on one machine: ingest a 2,000-paper dump, embed its papers (the semantic layer),
then beat's tick on 2 real Celery workers: they rank and plan every reader in slices
(DIGEST_PLAN_SLICE; each slice's topic lines are embedded there, as a first day after an import
embeds them), and compose and send the digests to a local SMTP sink.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/day.py [--readers 100000]

The database is a fresh `scale_day_bench` (or $BENCH_DATABASE) on that server, dropped
afterwards; the broker's queue is purged first. Prints each stage's wall time, the digests/s
of the send stage, and the peak memory (max RSS) of this process, of each worker process and
of the sink. Creating the readers is set-up, not part of the day. Target: the day under 10
minutes for 100,000 readers, no process above 1.5 GB.
"""

import argparse
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ingest import WORDS, write_dump
from scratch_database import scratch_database
from smtp import serve_smtp, start_sink

PROJECT_DIR = Path(__file__).resolve().parent.parent
PAPERS = 2_000


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            children.append(int(status.parent.name))
    return [pid] + [grandchild for child in children for grandchild in process_tree(child)]


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency=1",
            "--loglevel=WARNING",
            f"--hostname=day-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(done, started: float, timeout: float = 3600) -> float:
    """Poll `done` every second; the moment it held (perf_counter), or exit after `timeout`."""
    while not done():
        if time.perf_counter() - started > timeout:
            sys.exit(f"bench/day.py: not done after {timeout:.0f} s")
        time.sleep(1)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/day.py needs DATABASE_URL pointing at PostgreSQL")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        sys.exit("bench/day.py needs CELERY_BROKER_URL pointing at Redis")
    received = multiprocessing.Value("i", 0)
    sink, _ = start_sink(serve_smtp, received)
    os.environ.update(DEBUG="0", DJANGO_SETTINGS_MODULE="config.settings")
    try:
        with scratch_database(os.environ.get("BENCH_DATABASE", "scale_day_bench")) as tmp:
            run_day(options, tmp, received, sink.pid)
    finally:
        sink.terminate()


def run_day(options, tmp: Path, received, sink_pid: int) -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from config.celery import app
    from digest import tasks
    from digest.ingest import ingest
    from digest.matching import vectors
    from digest.models import Delivery, DigestRun
    from subscriptions.models import Subscriber

    call_command("migrate", verbosity=0)
    app.control.purge()
    dump = tmp / "dump.txt"
    write_dump(dump, PAPERS)
    rng = random.Random(7)
    Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"reader{n}@example.com",
                topics="\n".join(
                    " ".join(rng.sample(WORDS, rng.randint(1, 2))) for _ in range(rng.randint(1, 3))
                ),
                status=Subscriber.Status.ACTIVE,
                send_hour=0,
            )
            for n in range(options.readers)
        ),
        batch_size=5_000,
    )
    stages: list[tuple[str, float, str]] = []

    started = time.perf_counter()
    run = ingest(str(dump))
    stages.append(("ingest", time.perf_counter() - started, f"{run.created:,} papers"))

    started = time.perf_counter()  # what the embed_papers task does after each ingest
    embedded = vectors.embed_missing_papers()
    stages.append(
        (
            "embed papers",
            time.perf_counter() - started,
            f"{embedded.embedded:,} papers" if embedded.available else "no model: words alone",
        )
    )

    # Beat's tick, on a worker: more readers are due than DIGEST_PLAN_SLICE, so it hands them to
    # plan_slice tasks; the workers rank slices side by side, and each slice's digests are queued
    # to send as soon as it commits, while the other slices are still being ranked.
    workers = [start_worker(dict(os.environ)) for _ in range(options.workers)]
    try:
        started = time.perf_counter()
        tasks.plan_and_send.delay(timezone.now().isoformat())
        planned_at = wait_until(lambda: Delivery.objects.count() >= options.readers, started)
        slices = DigestRun.objects.count()
        stages.append(
            (
                "rank + plan",
                planned_at - started,
                f"{options.readers:,} readers in {slices} slices of up to "
                f"{settings.DIGEST_PLAN_SLICE:,} on {len(workers)} workers (from the tick to the "
                "last slice committed; sending begins as the first one does)",
            )
        )
        done = wait_until(
            lambda: not Delivery.objects.filter(status__in=["planned", "sending"]).exists(),
            started,
        )
        sent = Delivery.objects.filter(status="sent").count()
        stages.append(
            (
                "compose + send",
                done - planned_at,
                f"{sent:,} sent, {sent / (done - started):,.0f} digests/s from the tick; the "
                f"sink received {received.value:,}",
            )
        )
        worker_peaks = [
            max(peak_rss_mb(pid) for pid in process_tree(worker.pid)) for worker in workers
        ]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    failed = DigestRun.objects.filter(status=DigestRun.Status.FAILED).values_list(
        "error", flat=True
    )
    if failed:
        print(f"{len(failed)} slices failed to plan, e.g. {failed[0]}")
    print(f"A day for {options.readers:,} readers ({connection.vendor}, {len(workers)} workers):")
    for name, seconds, note in stages:
        print(f"  {name:<15} {seconds:8.1f} s   {note}")
    print(f"  {'the day':<15} {sum(s for _, s, _ in stages):8.1f} s")
    print(
        f"peak memory: this process (ingest, embed papers) "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; workers "
        + ", ".join(f"{peak:,.0f} MB" for peak in worker_peaks)
        + f"; SMTP sink {peak_rss_mb(sink_pid):,.0f} MB"
    )
    connection.close()


if __name__ == "__main__":
    main()
