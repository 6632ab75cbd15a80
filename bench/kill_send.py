"""Kill `send_digests` at random points, rerun it, and count the emails each reader got.

    .venv/bin/python bench/kill_send.py [--readers 2000] [--kills 5] [--seed N]

Imports N readers (every one of them due and matching sample papers) and ingests the sample
dumps through the real commands, then starts `manage.py send_digests` and SIGKILLs it 5 times at
random points (during start-up and planning, or after a random number of emails, polled in the
outbox), then, once the claim timeout has passed, runs it until it finishes. Counts the emails
per reader in the outbox, each parsed back with the `email` package, and prints:

    kills: 5, readers: 2000, emails per reader min 1 max 1, missing 0

On a SQLite file in a temporary folder by default; with DATABASE_URL pointing at PostgreSQL and
--flush it runs on that database after emptying it (never point it at one you care about).
tests/digest/delivery/test_sending_recovery.py runs the same scenario.
"""

import argparse
import csv
import email
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLE_TOPICS = [  # each matches several sample papers
    "mixture of experts;MoE;sparse experts",
    "quantization;model compression",
    "reasoning;language models",
    "scheduling;online algorithms",
    "delayed feedback;bandits;-survey",
    "spiking neural networks;asynchronous optimization",
]
ZONES = ["UTC", "America/New_York", "Europe/London", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu"]
CLAIM_TIMEOUT_SECONDS = 2.0


@dataclass
class KillReport:
    kills: int
    readers: int
    per_reader: Counter = field(default_factory=Counter)
    final_output: str = ""
    statuses: dict = field(default_factory=dict)
    runs_unfinished: int = 0
    killed_at: list[int] = field(default_factory=list)  # emails in the outbox at each kill
    left_by_kills: dict = field(default_factory=dict)  # deliveries by status after the last kill

    @property
    def missing(self) -> int:
        return sum(1 for n in self.per_reader.values() if n == 0)

    def line(self) -> str:
        counts = self.per_reader.values()
        return (
            f"kills: {self.kills}, readers: {self.readers}, emails per reader"
            f" min {min(counts, default=0)} max {max(counts, default=0)}, missing {self.missing}"
        )


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args)[:200]} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done


def command_env(database_url: str, outbox: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "EMAIL_BACKEND": "config.outbox.OutboxEmailBackend",
        "EMAIL_FILE_PATH": str(outbox),
        "DIGEST_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
    }
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):  # the cron path: no Celery, no Redis
        env.pop(name, None)
    return env


def emails(readers: int) -> list[str]:
    return [f"reader{n:05d}@example.com" for n in range(readers)]


def prepare(env: dict[str, str], folder: Path, *, readers: int, migrate: bool) -> str:
    """The readers and the papers, through the real commands; returns the --now to send at."""
    if migrate:
        manage(env, "migrate", "--noinput", "-v", "0")
    path = folder / "readers.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "topics", "frequency", "send_hour", "timezone"])
        for n, address in enumerate(emails(readers)):
            writer.writerow(
                [address, SAMPLE_TOPICS[n % len(SAMPLE_TOPICS)], "daily", 0, ZONES[n % len(ZONES)]]
            )
    manage(env, "import_subscribers", str(path))
    manage(env, "ingest", *sorted(str(p) for p in (PROJECT_DIR / "samples/dumps").glob("*.txt")))
    # One moment for every run, so a run that crosses midnight still plans the same day.
    return datetime.now(UTC).isoformat()


def outbox_count(outbox: Path) -> int:
    try:
        return sum(1 for name in os.listdir(outbox) if name.endswith(".eml"))
    except FileNotFoundError:
        return 0


def kill_at_random_points(
    env: dict[str, str], outbox: Path, *, now: str, kills: int, readers: int, rng: random.Random
) -> list[int]:
    """Start send_digests and SIGKILL it `kills` times; returns the emails in the outbox at each
    kill (a run that finished before its kill point is not counted, and the next one is tried)."""
    # Email counts to kill at, spread over the day's sending; the first kill lands at a random
    # moment of start-up or planning instead (or later, if that is where the run is).
    targets = sorted(rng.sample(range(1, readers), kills - 1)) if kills > 1 else []
    killed_at: list[int] = []
    attempts = 0
    while len(killed_at) < kills and attempts < kills * 3:
        attempts += 1
        target = targets[len(killed_at) - 1] if killed_at else None
        deadline = time.monotonic() + rng.uniform(0.3, 4.0) if target is None else None
        process = subprocess.Popen(
            [sys.executable, "manage.py", "send_digests", "--now", now],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while process.poll() is None:
            if target is not None and outbox_count(outbox) >= target:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.002)
        else:
            continue  # it finished on its own: not a kill
        time.sleep(rng.uniform(0, 0.01))  # anywhere within the next message or two
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            killed_at.append(outbox_count(outbox))
        else:
            process.wait()
    return killed_at


def finish(env: dict[str, str], *, now: str) -> str:
    """Rerun send_digests after the claim timeout until nothing is left to send."""
    output = ""
    for _ in range(5):
        time.sleep(CLAIM_TIMEOUT_SECONDS + 0.2)
        output = manage(env, "send_digests", "--now", now).stdout
        if "being sent by another process" not in output and "waiting to retry" not in output:
            break
    return output


DATABASE_STATE = """
import json
from django.db.models import Count
from digest.models import Delivery, DigestRun
print(json.dumps({
    "statuses": dict(Delivery.objects.values_list("status").annotate(n=Count("pk"))),
    "runs_unfinished": DigestRun.objects.filter(finished_at__isnull=True).count(),
}))
"""


def count_per_reader(outbox: Path, readers: int) -> Counter:
    per_reader = Counter(dict.fromkeys(emails(readers), 0))
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        per_reader[str(message["To"])] += 1
    return per_reader


def kill_and_finish(
    database_url: str, folder: Path, *, readers: int, kills: int, seed: int, migrate: bool
) -> KillReport:
    outbox = folder / "outbox"
    env = command_env(database_url, outbox)
    now = prepare(env, folder, readers=readers, migrate=migrate)
    rng = random.Random(seed)
    killed_at = kill_at_random_points(env, outbox, now=now, kills=kills, readers=readers, rng=rng)
    report = KillReport(kills=len(killed_at), readers=readers, killed_at=killed_at)
    report.left_by_kills = database_state(env)["statuses"]
    report.final_output = finish(env, now=now)
    report.per_reader = count_per_reader(outbox, readers)
    state = database_state(env)
    report.statuses, report.runs_unfinished = state["statuses"], state["runs_unfinished"]
    return report


def database_state(env: dict[str, str]) -> dict:
    output = manage(env, "shell", "-v", "0", "-c", DATABASE_STATE).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--flush", action="store_true", help="empty DATABASE_URL's PostgreSQL")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    url = os.environ.get("DATABASE_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if url.startswith("postgres"):
            if not args.flush:
                sys.exit("DATABASE_URL is PostgreSQL: pass --flush to empty it and run there")
            env = command_env(url, folder / "outbox")
            manage(env, "migrate", "--noinput", "-v", "0")
            manage(env, "flush", "--noinput")
        else:
            url = f"sqlite:///{folder / 'kill.sqlite3'}"
        started = time.monotonic()
        report = kill_and_finish(
            url,
            folder,
            readers=args.readers,
            kills=args.kills,
            seed=seed,
            migrate=not url.startswith("postgres"),
        )
        elapsed = time.monotonic() - started
    print(f"database: {url.split(':')[0]}, seed: {seed}, {elapsed:.0f} s in all")
    print(f"emails in the outbox at each kill: {report.killed_at}")
    print(f"deliveries by status after the kills: {report.left_by_kills}")
    print(f"at the end: {report.statuses}, runs unfinished: {report.runs_unfinished}")
    print(report.line())


if __name__ == "__main__":
    main()
