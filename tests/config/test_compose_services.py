"""Each app service of docker-compose.yml starts as written. No Docker engine runs here, so the
`command` of migrate, web, worker and beat runs natively (this repo's .venv, the local PostgreSQL
and Redis, a fresh database), is waited on until it is up, and is stopped again."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import yaml
from django.conf import settings

from tests.conftest import PROJECT_DIR, _missing

pytestmark = pytest.mark.services

SERVICES = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())["services"]
VENV_BIN = Path(sys.executable).parent  # python, gunicorn and celery are all installed here
START_TIMEOUT_SECONDS = 90


def native_command(service: str, **replacements: str) -> list[str]:
    """The service's compose command, run with the .venv's executables."""
    argv = [replacements.get(word, word) for word in shlex.split(SERVICES[service]["command"])]
    return [str(VENV_BIN / argv[0]), *argv[1:]]


def server_params() -> dict:
    database = settings.DATABASES["default"]
    return {
        "host": database.get("HOST") or "127.0.0.1",
        "port": database.get("PORT") or 5432,
        "user": database.get("USER") or "postgres",
        "password": database.get("PASSWORD") or None,
    }


class ComposeDatabase:
    """A database of its own, as the compose file's postgres service starts: empty."""

    def __init__(self) -> None:
        test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME") or "test"
        self.name = f"{test_name}_compose"[:63]
        self.params = server_params()

    def admin(self, sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **self.params) as connection:
            connection.execute(sql)

    def create(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def query(self, sql: str, *args) -> list[tuple]:
        with psycopg.connect(dbname=self.name, autocommit=True, **self.params) as connection:
            cursor = connection.execute(sql, args)
            return cursor.fetchall() if cursor.description else []

    @property
    def url(self) -> str:
        password = f":{self.params['password']}" if self.params["password"] else ""
        host, port = self.params["host"], self.params["port"]
        return f"postgres://{self.params['user']}{password}@{host}:{port}/{self.name}"


class ServiceProcess:
    """A compose command running natively, its output collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.log: list[str] = []
        self.process = subprocess.Popen(
            argv,
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.log.append(line)

    def wait_until(self, is_up, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not is_up():
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"exited {code} before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} after {START_TIMEOUT_SECONDS} s:\n{self.output}")
            time.sleep(0.5)

    @property
    def output(self) -> str:
        return "".join(self.log[-60:])

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def compose_database() -> Iterator[ComposeDatabase]:
    # Module-scoped fixtures are set up before the `services` check: make the same check here.
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        _missing("DATABASE_URL does not point at PostgreSQL")
    database = ComposeDatabase()
    database.create()
    yield database
    database.drop()


@pytest.fixture
def service_env(services, compose_database, tmp_path) -> dict[str, str]:
    """What .env gives the app containers, pointed at the local PostgreSQL and Redis."""
    broker = services
    redis.Redis.from_url(broker).flushdb()  # no task left over from another test
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "CELERY_", "CACHE_", "TEST_DATABASE", "EMAIL_"))
    }
    return {
        **inherited,
        "DATABASE_URL": compose_database.url,
        "CELERY_BROKER_URL": broker,
        "CACHE_URL": settings.CACHE_URL,
        "DEBUG": "0",
        "SECRET_KEY": "compose-services-test-key-" + "k" * 40,
        "PAPERBOY_VAR_DIR": str(tmp_path / "var"),
        "EMAIL_FILE_PATH": str(tmp_path / "outbox"),
    }


@pytest.fixture
def migrated(service_env, compose_database) -> ComposeDatabase:
    """The migrate service has completed successfully (what web, worker and beat wait for)."""
    if not compose_database.query("SELECT to_regclass('django_migrations')")[0][0]:
        result = subprocess.run(
            native_command("migrate"),
            cwd=PROJECT_DIR,
            env=service_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return compose_database


def periodic_tasks(database: ComposeDatabase) -> dict[str, str | None]:
    rows = database.query(
        "SELECT task.name, crontab.hour FROM django_celery_beat_periodictask task"
        " LEFT JOIN django_celery_beat_crontabschedule crontab ON crontab.id = task.crontab_id"
    )
    return dict(rows)


def test_migrate_service_migrates_an_empty_database_and_seeds_the_schedule(migrated):
    assert migrated.query("SELECT count(*) FROM django_migrations")[0][0] > 0
    assert set(periodic_tasks(migrated)) >= set(settings.CELERY_BEAT_SCHEDULE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthz(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):  # refused while gunicorn boots; 503 while a check fails
        return None


def test_web_service_serves_healthz_under_gunicorn(migrated, service_env):
    port = free_port()
    web = ServiceProcess(
        native_command("web", **{"0.0.0.0:8000": f"127.0.0.1:{port}"}), service_env
    )
    answers = []
    try:
        web.wait_until(
            lambda: answers.append(healthz(f"http://127.0.0.1:{port}/healthz")) or answers[-1],
            "answering /healthz",
        )
    finally:
        web.stop()

    # No Celery worker runs here (/healthz says "degraded" for it); what it reaches is ok.
    checks = {name: answers[-1][name] for name in ("database", "cache", "broker")}
    assert checks == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert "Booting worker" in "".join(web.log)


def test_worker_service_answers_a_ping(migrated, service_env):
    worker = ServiceProcess(native_command("worker"), service_env)

    def pong() -> bool:
        names = re.findall(r"(celery@\S+) v\d", "".join(worker.log))
        if not names:
            return False
        ping = subprocess.run(
            [str(VENV_BIN / "celery"), "-A", "config", "inspect", "ping", "-t2", "-d", names[0]],
            cwd=PROJECT_DIR,
            env=service_env,
            capture_output=True,
            text=True,
        )
        return ping.returncode == 0 and "pong" in ping.stdout

    try:
        worker.wait_until(pong, "answering celery inspect ping")
    finally:
        worker.stop()
    assert "ready." in "".join(worker.log)


def test_beat_service_starts_and_keeps_an_operators_schedule_edits(migrated, service_env):
    # An operator moved the daily ingest to 06:xx in the admin and deleted the planning entry.
    migrated.query(
        "UPDATE django_celery_beat_crontabschedule SET hour = '6' WHERE id ="
        " (SELECT crontab_id FROM django_celery_beat_periodictask WHERE name = %s)",
        "ingest-sources-daily",
    )
    migrated.query("DELETE FROM django_celery_beat_periodictask WHERE name = %s", "plan-deliveries")
    beat = ServiceProcess(native_command("beat"), service_env)
    try:
        beat.wait_until(lambda: "beat: Starting..." in "".join(beat.log), "logging its start")
        # Beat sets up its schedule after that line; the deleted default coming back shows it did.
        beat.wait_until(lambda: "plan-deliveries" in periodic_tasks(migrated), "seeding")
    finally:
        beat.stop()

    assert periodic_tasks(migrated)["ingest-sources-daily"] == "6"
    assert "digest.delivery.schedule.SeedingDatabaseScheduler" in "".join(beat.log)
