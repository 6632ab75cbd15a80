"""Hostile conditions at the delivery end (issue 22, items 7, 9, 11 and the worker-less /healthz):
replays each probe against this tree and prints a table of the probe, the behaviour the issue
reported, what happens now, the data lost, the seconds it took and the peak memory.

    .venv/bin/python bench/hostile_delivery.py              # every probe
    .venv/bin/python bench/hostile_delivery.py clock merges # the probes whose names contain these

Each probe runs in a process of its own (its peak memory is its own) on a freshly migrated SQLite
file in a temporary folder; servers (a redis-server) are on 127.0.0.1. A probe is a function
returning {"probe", "before", "after", "data_lost", "seconds", "peak_mb"}; list it in PROBES.
"""

import errno
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _row(probe: str, before: str, after: str, lost: str, started: float) -> dict:
    return {
        "probe": probe,
        "before": before,
        "after": after,
        "data_lost": lost,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_mb": _peak_mb(),
    }


def _plan_readers(count: int) -> list[int]:
    from digest.delivery import planning
    from digest.models import Paper
    from subscriptions.models import Subscriber

    Paper.objects.create(
        title="Sparse Mixture of Experts at Scale",
        title_key="sparse mixture of experts at scale",
        abstract="We train a mixture of experts model. It routes tokens to experts.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n:04}@example.com",
            topics="mixture of experts",
            status=Subscriber.Status.ACTIVE,
            send_hour=7,
        )
        for n in range(count)
    )
    return planning.queue_run(planning.plan_deliveries(NOW))


def _allow_test_client() -> None:
    """Django's test Client asks as "testserver" (setup_test_environment would also swap the
    email backend for the in-memory one: not here)."""
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


class _ESP:
    """Accepts every message into a log shared by the senders, `seconds` each."""

    def __init__(self, log: list, *, seconds: float = 0.0, on_message=None) -> None:
        from django.core.mail.backends.base import BaseEmailBackend

        class Backend(BaseEmailBackend):
            def send_messages(backend, messages) -> int:
                for message in messages:
                    time.sleep(seconds)
                    log.append(message.to[0])
                    if on_message:
                        on_message(len(log))
                return len(messages)

        self.backend = Backend()


def _in_thread(target) -> threading.Thread:
    def run() -> None:
        from django.db import connection

        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _copies(log: list, readers: int) -> str:
    counts = Counter(log)
    twice = sum(1 for copies in counts.values() if copies > 1)
    return f"{twice} of {readers} sent twice, {readers - len(counts)} never"


def probe_jumped_clock() -> dict:
    """400 digests in one claim; after 200 the clock jumps 120 s (timeout 60 s) and a second
    sender (a redelivered task, the stalled-claims recovery) starts on the same ids."""
    from django.conf import settings
    from django.utils import timezone

    from digest.delivery import sending

    started = time.perf_counter()
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 60
    ids = _plan_readers(400)
    real_now, offset, log, rivals = timezone.now, [timedelta(0)], [], []
    timezone.now = lambda: real_now() + offset[0]

    def on_message(count: int) -> None:
        if count == 200:
            offset[0] = timedelta(seconds=120)
            rival = _ESP(log, seconds=0.001).backend
            rivals.append(_in_thread(lambda: sending.send_deliveries(ids, connection=rival)))

    sending.send_deliveries(ids, connection=_ESP(log, seconds=0.001, on_message=on_message).backend)
    for rival in rivals:
        rival.join()
    return _row(
        "jumped clock (+120 s)",
        "202 of 400 sent twice",
        _copies(log, 400),
        "none" if len(set(log)) == 400 else f"{400 - len(set(log))} digests",
        started,
    )


def probe_slow_esp() -> dict:
    """An ESP taking 0.3 s a message, a chunk of 100 (30 s), a claim timeout of 10 s, and a
    second sender retrying the same chunk every 2 s, as beat's recovery would."""
    from django.conf import settings

    from digest.delivery import sending

    started = time.perf_counter()
    settings.DIGEST_CLAIM_TIMEOUT_SECONDS = 10
    ids = _plan_readers(100)
    log: list = []
    done = threading.Event()

    def rival() -> None:
        while not done.wait(2):
            sending.send_deliveries(ids, connection=_ESP(log, seconds=0.3).backend)

    thread = _in_thread(rival)
    sending.send_deliveries(ids, connection=_ESP(log, seconds=0.3).backend)
    done.set()
    thread.join()
    return _row(
        "slow ESP (0.3 s/message, chunk 100, timeout 10 s)",
        "19 of 400 sent twice",
        _copies(log, 100),
        "none" if len(set(log)) == 100 else f"{100 - len(set(log))} digests",
        started,
    )


def probe_overlapping_merges() -> dict:
    """Two editors confirm merges of overlapping papers through the admin: the second one's
    paper was merged away by the first."""
    from django.contrib.auth.models import User
    from django.contrib.messages import get_messages
    from django.test import Client
    from django.urls import reverse

    from digest.models import Paper

    started = time.perf_counter()
    _allow_test_client()
    papers = [
        Paper.objects.create(
            title=f"Sparse Mixture of Experts{suffix}",
            title_key=f"sparse mixture of experts{suffix}",
            first_seen=NOW,
            last_seen=NOW,
        )
        for suffix in ("", ".", " (v2)")
    ]
    client = Client()
    client.force_login(User.objects.create_superuser("editor", "editor@example.com", "x"))

    def confirm(chosen: list, keep) -> tuple[int, list[str]]:
        form = {
            "action": "merge_duplicates",
            "_selected_action": [paper.pk for paper in chosen],
            "keep": keep.pk,
            "post": "yes",
        }
        response = client.post(reverse("admin:digest_paper_changelist"), form, follow=True)
        return response.status_code, [str(m) for m in get_messages(response.wsgi_request)]

    first, second, third = papers
    confirm([first, second], first)
    status, shown = confirm([second, third], third)
    return _row(
        "overlapping merges in the admin",
        "500",
        f"{status}: {shown[0] if shown else 'no message'}",
        f"papers left {Paper.objects.count()} of 3 (1 merged away, as the first editor asked)",
        started,
    )


def probe_disk_full() -> dict:
    """The outbox's disk fills up during a round of 20 digests (every write raises ENOSPC
    partway), then frees: what is left behind, what /healthz says, what the next round sends."""
    from django.conf import settings
    from django.test import Client

    from digest.delivery import rounds
    from digest.models import Delivery

    started = time.perf_counter()
    _allow_test_client()
    outbox = Path(settings.EMAIL_FILE_PATH)
    ids = _plan_readers(20)
    real_open = Path.open

    class FullDiskFile:
        def __init__(self, file) -> None:
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_on_a_full_disk(self, mode="r", *args, **kwargs):
        file = real_open(self, mode, *args, **kwargs)
        return FullDiskFile(file) if "w" in mode else file

    Path.open = open_on_a_full_disk
    settings.HEALTH_MIN_FREE_DISK_MB = shutil.disk_usage(outbox.parent).free // 2**20 + 1
    try:
        from digest.delivery import sending

        sending.send_deliveries(ids)
        health = Client().get("/healthz")
    finally:
        Path.open = real_open
        settings.HEALTH_MIN_FREE_DISK_MB = 100
    left = len(list(outbox.glob(".*.tmp")))
    error = Delivery.objects.exclude(error="").values_list("error", flat=True).first() or ""
    Delivery.objects.update(next_attempt_at=None)  # the retry is due: the disk has room again
    rounds.run_digest_round(NOW + timedelta(minutes=5))
    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    return _row(
        "disk full (ENOSPC in the outbox)",
        ".tmp files left, /healthz 200",
        f"{left} .tmp left; /healthz {health.status_code} {health.json()['status']}; "
        f"{error[:60]!r}",
        f"none: {sent} of 20 sent once the disk had room",
        started,
    )


def probe_healthz_without_worker() -> dict:
    """A broker (a redis-server of our own) and no Celery worker: what /healthz answers."""
    from django.test import Client

    started = time.perf_counter()
    _allow_test_client()
    health = Client().get("/healthz")
    body = health.json()
    return _row(
        "/healthz with no worker running",
        "200",
        f"{health.status_code} status={body['status']} degraded={body.get('degraded')}",
        "none",
        started,
    )


PROBES = [
    probe_jumped_clock,
    probe_slow_esp,
    probe_overlapping_merges,
    probe_disk_full,
    probe_healthz_without_worker,
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_probe(name: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(json.dumps({probe.__name__: probe for probe in PROBES}[name]()))


def _probe_in_process(name: str, folder: Path) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{folder / 'probe.sqlite3'}",
        "EMAIL_BACKEND": "config.outbox.OutboxEmailBackend",
        "EMAIL_FILE_PATH": str(folder / "outbox"),
        "CELERY_BROKER_URL": "",
        "CACHE_URL": "",
    }
    redis_port = None
    if name == "probe_healthz_without_worker":
        redis_port = _free_port()
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        time.sleep(0.5)
        env["CELERY_BROKER_URL"] = env["CACHE_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--one", name],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        if redis_port:
            subprocess.run(
                ["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True
            )
    if done.returncode != 0:
        return {"probe": name, "before": "", "after": "FAILED: " + done.stderr[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(words: list[str]) -> None:
    columns = ["probe", "before", "after", "data_lost", "seconds", "peak_mb"]
    print(" | ".join(columns))
    for probe in PROBES:
        if words and not any(word in probe.__name__ for word in words):
            continue
        with tempfile.TemporaryDirectory() as folder:
            row = _probe_in_process(probe.__name__, Path(folder))
        print(" | ".join(str(row.get(column, "")) for column in columns), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_DIR))
    if sys.argv[1:2] == ["--one"]:
        _run_probe(sys.argv[2])
    else:
        main(sys.argv[1:])
