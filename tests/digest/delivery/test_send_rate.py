"""One send rate across workers (Redis), and a safe share per worker while Redis is down."""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import redis

from digest.delivery import planning, send_rate, sending
from digest.delivery.sending import Outcome
from digest.models import Delivery
from tests.conftest import PROJECT_DIR
from tests.digest.delivery.delivery_records import ScriptedBackend

pytestmark = pytest.mark.django_db
CLOSED_PORT = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def fresh_windows(monkeypatch):
    monkeypatch.setattr(send_rate, "_local", send_rate._LocalWindows())


TAKER = """
import json, os, sys
import django
django.setup()
from digest.delivery import send_rate
windows = [send_rate.take(1, max_wait=30).window for _ in range(int(sys.argv[1]))]
print(json.dumps(windows))
"""


def test_two_workers_together_never_pass_the_per_second_limit(services, settings):
    url = settings.CACHE_URL if settings.CACHE_URL.startswith("redis") else services
    for key in redis.Redis.from_url(url).scan_iter(f"{send_rate.KEY_PREFIX}*"):
        redis.Redis.from_url(url).delete(key)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ESP_MAX_PER_SECOND": "12",
        "ESP_MAX_PER_HOUR": "0",
        "ESP_RATE_REDIS_URL": url,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", TAKER, "30"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    windows = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]

    per_window = Counter(windows[0] + windows[1])
    assert sum(per_window.values()) == 60
    assert max(per_window.values()) <= 12  # both together, not 12 each
    shared = set(windows[0]) & set(windows[1])
    assert shared  # the two took permits in the same seconds
    assert any(per_window[second] == 12 for second in shared)  # and filled them between them


def test_with_redis_down_a_worker_takes_its_share_of_the_limit_never_more(settings):
    settings.ESP_RATE_REDIS_URL = CLOSED_PORT
    settings.ESP_MAX_PER_SECOND, settings.ESP_MAX_PER_HOUR = 20, 0
    settings.ESP_WORKER_SHARE_DIVISOR = 4

    permits = [send_rate.try_take(1) for _ in range(60)]

    granted = Counter(permit.window for permit in permits if permit.granted)
    assert granted and max(granted.values()) <= 5
    assert not any(permit.shared for permit in permits)
    refused = [permit for permit in permits if not permit.granted]
    assert refused and all(0 < permit.wait <= 1 for permit in refused)


def test_with_redis_down_the_hourly_share_holds_and_a_long_wait_gives_up(settings):
    settings.ESP_RATE_REDIS_URL = CLOSED_PORT
    settings.ESP_MAX_PER_SECOND, settings.ESP_MAX_PER_HOUR = 0, 8
    settings.ESP_WORKER_SHARE_DIVISOR = 4

    assert [send_rate.try_take(1).granted for _ in range(3)] == [True, True, False]
    with pytest.raises(send_rate.SendRateExceeded) as refused:
        send_rate.take(1, max_wait=0.5)
    assert refused.value.retry_in > 0.5


def test_no_limit_configured_means_no_limit(settings):
    settings.ESP_RATE_REDIS_URL = CLOSED_PORT
    settings.ESP_MAX_PER_SECOND = settings.ESP_MAX_PER_HOUR = 0

    assert all(send_rate.try_take(1).granted for _ in range(1000))


def test_a_chunk_past_the_hourly_rate_sends_what_it_may_and_puts_the_rest_back(
    papers, settings, monkeypatch
):
    from tests.digest.delivery.delivery_records import NOW, make_subscriber

    settings.ESP_RATE_REDIS_URL = CLOSED_PORT
    settings.ESP_MAX_PER_SECOND, settings.ESP_MAX_PER_HOUR = 0, 8
    settings.ESP_WORKER_SHARE_DIVISOR = 4  # 2 an hour for this worker
    for name in ("ada", "grace", "alan", "edsger"):
        make_subscriber(f"{name}@example.com")
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    backend = ScriptedBackend()
    monkeypatch.setattr(send_rate, "MAX_WAIT_SECONDS", 0.2)

    results = sending.send_deliveries(ids, connection=backend)

    assert len(backend.sent) == 2
    assert Counter(result.outcome for result in results.values()) == {
        Outcome.SENT: 2,
        Outcome.RETRY: 2,
    }
    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert statuses == {"sent": 2, "planned": 2}
