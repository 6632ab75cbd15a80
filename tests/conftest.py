"""Fixtures shared by the whole suite.

Tests that need the real PostgreSQL and Redis ask for the `services` fixture: they skip when
DATABASE_URL / CELERY_BROKER_URL do not point at them, and fail instead with REQUIRE_SERVICES=1
(as in CI), so a missing service can never turn a CI run green by skipping.
"""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, connections

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCREENSHOTS = PROJECT_DIR / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out; this machine has no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def outbox(settings, tmp_path) -> Path:
    """Each test writes its emails to its own outbox folder."""
    settings.EMAIL_BACKEND = "config.outbox.OutboxEmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    return tmp_path / "outbox"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output free of access-log lines."""

    def log_message(self, *args) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free port of 127.0.0.1 in a thread; yields the base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def read_outbox(folder: Path) -> list[EmailMessage]:
    """The emails a test produced, parsed back with the email package, oldest first."""
    if not folder.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(folder.glob("*.eml"), key=lambda path: (path.stat().st_mtime_ns, path))
    ]


class SMTPServer:
    """A local SMTP server (aiosmtpd, in a thread) that keeps what it accepts and who sent it;
    `on_accept(to)` runs when a message has come whole, before the server answers that it
    accepts it. With a `mailbox` folder, each message accepted is also a file there, one per
    hand-over and with the newlines a mailbox keeps (as the tests' outbox folders hold them)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.peers: set = set()
        self.on_accept = None
        self.mailbox: Path | None = None
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.on_accept:
            self.on_accept(envelope.rcpt_tos[0])
        self.received.append((envelope.rcpt_tos[0], envelope.content))
        self.peers.add(session.peer)
        if self.mailbox is not None:
            self._file(envelope.content.replace(b"\r\n", b"\n"))
        return "250 OK"

    def _file(self, content: bytes) -> None:
        self.mailbox.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.eml"
        temporary = self.mailbox / f".{name}.tmp"
        temporary.write_bytes(content)
        temporary.rename(self.mailbox / name)  # readers never see a half-written file

    def recipients(self) -> list[str]:
        return [to for to, _ in self.received]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = SMTPServer()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


@pytest.fixture
def redis_url() -> str:
    url = django_settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        _missing("CELERY_BROKER_URL does not point at Redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        _missing(f"Redis at {url} does not answer: {error}")
    return url


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        _missing("DATABASE_URL does not point at PostgreSQL")


@pytest.fixture
def services(postgres, redis_url) -> str:
    return redis_url


def test_database_url() -> str:
    """A URL for the database this test run created, for processes the test starts."""
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{params['USER']}{password}@{host}:{port}/{params['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and the real broker."""

    def __init__(self, env: dict[str, str], concurrency: int = 1) -> None:
        self.env = env
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.log: list[str] = []

    def start(self, timeout: float = 60) -> None:
        ready = threading.Event()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def pump(stream) -> None:
            for line in stream:
                self.log.append(line)
                if " ready." in line:
                    ready.set()

        threading.Thread(target=pump, args=(self.process.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + "".join(self.log[-50:]))

    def kill(self, signal_number: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal_number)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@pytest.fixture
def celery_worker_process(services, transactional_db, settings) -> Iterator[WorkerProcess]:
    """Start with `.start()`; stopped after the test. Data must be committed to be seen."""
    broker = services
    redis.Redis.from_url(broker).flushdb()  # no task left over from another test
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": broker,
        "CACHE_URL": django_settings.CACHE_URL,
        "EMAIL_BACKEND": settings.EMAIL_BACKEND,
        "EMAIL_FILE_PATH": settings.EMAIL_FILE_PATH,
        "DATABASE_CONN_MAX_AGE": "0",
    }
    worker = WorkerProcess(env)
    yield worker
    worker.stop()


@pytest.fixture
def browser():
    """Debian's headless chromium driven by Playwright; fails instead of skipping with
    REQUIRE_BROWSER=1 (as in CI)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the ORM calls stay synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # Queries made while Playwright's loop ran opened their own connection: close it, or the
        # test database cannot be dropped at the end of the run.
        connections.close_all()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """An SQLite file migrated once by a real `manage.py migrate`: tests that run the project's
    commands in a process of their own copy it rather than migrate again."""
    path = tmp_path_factory.mktemp("migrated") / "template.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=PROJECT_DIR, env=env, check=True
    )
    return path
