"""A Redis outage degrades, it is not a site outage: with the cache and the broker unreachable
(a closed port, or a redis-server this test starts on a free port and then stops) pages render,
sign-ups are stored and their confirmation email is sent once Redis is back, rate limits count in
the database, and /healthz answers 503 naming what failed. Never the shared Redis on 6379."""

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from django.urls import reverse

from config.cache import DegradingRedisCache
from config.celery import app as celery_app
from digest.models import Delivery, IngestRun, Rating, ReaderProfile
from subscriptions import tasks
from subscriptions.models import OwedEmail, Subscriber
from tests.conftest import read_outbox
from tests.digest.desk.admin_records import make_delivery, make_subscriber, run_action
from tests.digest.feedback.test_ratings import make_paper, make_reader, rate_path
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A port nothing listens on (the kernel's pick, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    """A redis-server of this test's own, on a free port (never the shared one)."""

    def __init__(self) -> None:
        self.port = free_port()
        assert self.port != 6379
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
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
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        # Shutting down closes the connection (or the server was stopped already).
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=self.port, socket_connect_timeout=1).shutdown(nosave=True)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_at(settings, outbox, monkeypatch):
    """Point the cache and the Celery broker at a URL for the rest of the test."""
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager

    def point(url: str) -> None:
        settings.CACHES = {
            "default": {
                "BACKEND": "config.cache.DegradingRedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
        settings.CACHE_URL = url
        settings.CELERY_BROKER_URL = url
        # Celery reads CELERY_BROKER_URL from the environment before its configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
        celery_app.conf.broker_url = url
        celery_app.conf.task_always_eager = False
        forget_broker_connections()

    yield point
    monkeypatch.undo()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved
    forget_broker_connections()
    DegradingRedisCache._down_until = 0.0


def forget_broker_connections() -> None:
    """Make Celery's next publish connect to the configured broker (pools are shared: the
    ones to the real broker are left open for the tests after this one)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def visit_while_down(client) -> dict:
    """What a visitor gets while Redis is down: the status of each page, and the sign-up."""
    statuses = {
        "/": client.get("/").status_code,
        "/subscribe/": client.get("/subscribe/").status_code,
        "sign-up POST": client.post(
            "/subscribe/", sign_up_data(email="ada@example.org")
        ).status_code,
        "/healthz": client.get("/healthz").status_code,
    }
    return statuses


def send_owed_emails_once_redis_is_back() -> int:
    celery_app.conf.task_always_eager = True  # the worker's side, in this process
    return tasks.queue_consent_emails()


def test_with_the_cache_and_broker_on_a_closed_port_the_site_degrades(client, redis_at, outbox):
    redis_at(f"redis://127.0.0.1:{free_port()}/0")

    statuses = visit_while_down(client)
    health = client.get("/healthz")

    print(f"\nclosed port: {statuses}; /healthz said {health.json()}")
    assert statuses == {"/": 200, "/subscribe/": 200, "sign-up POST": 302, "/healthz": 503}
    assert health.json()["cache"].startswith("error")
    assert health.json()["broker"].startswith("error")
    assert health.json()["database"] == "ok"
    ada = Subscriber.objects.get()
    assert ada.status == Subscriber.Status.PENDING
    assert read_outbox(outbox) == []  # not sent yet: owed
    assert OwedEmail.objects.filter(subscriber=ada, template="confirm").count() == 1

    assert send_owed_emails_once_redis_is_back() == 1

    [email] = read_outbox(outbox)
    assert email["To"] == "ada@example.org"
    assert [purpose for purpose, _ in links_in(outbox)] == ["confirm", "preferences"]
    assert not OwedEmail.objects.exists()


def test_a_stopped_redis_degrades_and_the_sign_up_is_mailed_when_it_is_back(
    client, redis_at, own_redis, outbox
):
    redis_at(own_redis.url)
    assert client.get("/healthz").status_code == 200  # up: all is well
    own_redis.stop()

    statuses = visit_while_down(client)
    health = client.get("/healthz").json()

    print(f"\nstopped redis-server on port {own_redis.port}: {statuses}; /healthz said {health}")
    assert statuses == {"/": 200, "/subscribe/": 200, "sign-up POST": 302, "/healthz": 503}
    assert health["cache"].startswith("error") and health["broker"].startswith("error")
    assert Subscriber.objects.filter(email="ada@example.org").exists()
    assert read_outbox(outbox) == []

    own_redis.start()
    assert client.get("/healthz").status_code == 200
    assert send_owed_emails_once_redis_is_back() == 1

    [email] = read_outbox(outbox)
    assert email["To"] == "ada@example.org"
    token = links_in(outbox)[0][1]
    client.post(reverse("subscriptions:confirm", kwargs={"token": token}))
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def test_rate_limits_still_limit_in_the_database_while_redis_is_down(client, redis_at, settings):
    redis_at(f"redis://127.0.0.1:{free_port()}/0")
    settings.SIGNUP_LIMIT_PER_ADDRESS = 2
    settings.SIGNUP_LIMIT_PER_IP = 4

    by_address = [
        client.post("/subscribe/", sign_up_data(email="victim@example.com")).status_code
        for _ in range(3)
    ]
    by_ip = [
        client.post("/subscribe/", sign_up_data(email=f"reader{n}@example.com")).status_code
        for n in range(2)
    ]

    assert by_address == [302, 302, 429]
    assert by_ip == [302, 429]  # the 4th and 5th sign-up from this IP: the 5th is over 4


# --- what else queues a task: a rating, the editor's buttons --------------------------------------


def test_a_rating_while_the_broker_is_down_is_saved_and_learned_in_the_request(
    client, redis_at, django_capture_on_commit_callbacks
):
    paper = make_paper("Sparse mixture of experts", abstract="Routing tokens to experts.")
    reader = make_reader()
    redis_at(f"redis://127.0.0.1:{free_port()}/0")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(rate_path(paper, "more", reader))

    assert response.status_code == 200
    assert "Noted: more like this" in response.content.decode()
    assert Rating.objects.get().value == Rating.Value.MORE
    profile = ReaderProfile.objects.get(subscriber=reader)
    assert profile.ratings_count == 1
    assert profile.liked_titles == ["Sparse mixture of experts"]


def test_run_an_ingest_now_while_the_broker_is_down_says_nothing_was_started(
    admin_client, redis_at
):
    redis_at(f"redis://127.0.0.1:{free_port()}/0")

    response = admin_client.post(reverse("admin:digest_ingestrun_run"), follow=True)

    assert response.status_code == 200
    assert "No ingest was started: the task queue cannot be reached" in response.content.decode()
    assert not IngestRun.objects.exists()


def test_retrying_failed_deliveries_while_the_broker_is_down_leaves_them_to_the_beat(
    admin_client, redis_at
):
    paper = make_paper("Sparse Mixture of Experts")
    reader = make_subscriber(
        "failed@example.com", status=Subscriber.Status.ACTIVE, topics="mixture of experts"
    )
    failed = make_delivery(reader, [paper], status=Delivery.Status.FAILED, error="Timeout")
    redis_at(f"redis://127.0.0.1:{free_port()}/0")

    response = run_action(admin_client, "delivery", "retry_failed", [failed])

    assert response.status_code == 200
    assert "will be sent again when the task queue is back" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.PLANNED  # the beat's requeue of stalled ones sends it
