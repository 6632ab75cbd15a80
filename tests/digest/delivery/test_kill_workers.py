"""Real Celery workers SIGKILLed while they send over SMTP: nobody is left without their digest,
and nobody gets it twice (bench/kill_workers.py, smaller)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_killed_mid_send_lose_no_digest_and_never_send_one_twice(services, settings):
    base_url = os.environ["DATABASE_URL"]
    env = {
        **os.environ,
        "DATABASE_URL": base_url,
        "BENCH_DATABASE": "test_scale_day_kill",
        "CELERY_BROKER_URL": services,
        "DIGEST_SEND_CHUNK": "10",
    }
    finished = subprocess.run(
        [
            sys.executable,
            "bench/kill_workers.py",
            "--readers=300",
            "--workers=2",
            "--kills=3",
            "--seed=4",
            "--json",
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])

    outcome = {key: report[key] for key in ("kills", "statuses", "lost", "copied")}
    # Each message is marked sent right before its last line goes (smtp_sending): a worker
    # killed before that sent nothing, and one killed after has its row saying it sent it.
    assert outcome == {"kills": 3, "statuses": {"sent": 300}, "lost": 0, "copied": 0}, report
