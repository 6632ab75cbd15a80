"""/healthz: 200 while pages can be served, 503 naming the database, cache or broker that does
not answer; "degraded" in the body when no Celery worker answers a ping or the outbox's disk is
nearly full (issue 22)."""

import os
import time

import pytest
from django.core.cache import cache

from tests.config.test_outage import own_redis, redis_at  # noqa: F401 - fixtures
from tests.conftest import WorkerProcess


@pytest.mark.django_db
def test_healthz_answers_when_database_and_cache_do(client, settings):
    response = client.get("/healthz")

    assert response.status_code == 200
    expected = {"database": "ok", "cache": "ok", "disk": "ok", "status": "ok"}
    body = response.json()
    assert body.pop("semantic").startswith("ok: ")
    if settings.CELERY_BROKER_URL:  # and no worker runs in this test
        assert body.pop("worker").startswith("error: RuntimeError: no Celery worker answered")
        expected |= {"broker": "ok", "status": "degraded", "degraded": ["worker"]}
        assert body == expected
    else:
        assert body == expected


@pytest.mark.django_db
def test_healthz_says_degraded_when_the_outbox_disk_is_low(client, settings):
    settings.HEALTH_MIN_FREE_DISK_MB = 2**40  # more than any disk here has free

    response = client.get("/healthz")

    assert response.status_code == 200  # pages are still served
    body = response.json()
    assert body["status"] == "degraded" and "disk" in body["degraded"]  # (and "worker" when a
    # broker is configured: no worker runs in this test)
    assert "below HEALTH_MIN_FREE_DISK_MB" in body["disk"]


@pytest.mark.django_db
def test_healthz_checks_no_disk_when_mail_goes_to_an_esp(client, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.HEALTH_MIN_FREE_DISK_MB = 2**40

    assert "disk" not in client.get("/healthz").json()


@pytest.mark.django_db
def test_healthz_says_degraded_without_a_worker_and_ok_once_one_answers(
    client,
    redis_at,  # noqa: F811 - a fixture
    own_redis,  # noqa: F811 - a fixture
):
    redis_at(own_redis.url)

    without = client.get("/healthz")

    assert without.status_code == 200
    assert (without.json()["status"], without.json()["degraded"]) == ("degraded", ["worker"])
    worker = WorkerProcess({**os.environ, "CELERY_BROKER_URL": own_redis.url})
    worker.start()
    try:
        deadline = time.monotonic() + 60  # a worker takes a while to start on a busy machine
        with_worker = client.get("/healthz").json()
        while with_worker["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.5)
            with_worker = client.get("/healthz").json()
    finally:
        worker.stop()
    assert (with_worker["status"], with_worker["worker"]) == ("ok", "ok")


def test_cache_is_the_real_redis_when_services_run(redis_url, settings):
    import redis

    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("paperboy-probe", "seen", 30)
    raw = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert any(b"paperboy-probe" in key for key in raw.keys("*paperboy-probe*"))
