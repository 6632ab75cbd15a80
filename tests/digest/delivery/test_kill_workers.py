"""Real Celery workers SIGKILLed while they send: nobody is left without their digest, and
nobody gets two different ones (bench/kill_workers.py, smaller)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_killed_mid_send_lose_no_digest_and_never_send_two_different_ones(
    services, settings
):
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

    assert report["kills"] == 3
    assert report["statuses"] == {"sent": 300}
    assert report["lost"] == 0
    # A copy handed over again after a kill carries the same Message-ID (mailbox providers keep
    # one); two different digests for one reader would be a second delivery.
    assert report["distinct_twice"] == 0
