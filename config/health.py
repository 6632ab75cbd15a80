"""/healthz: ours, not django-health-check: its failed checks all answer 500 (a stopped worker would
take every web node out of the load balancer), its disk check is psutil's percentage of a node's
root disk, not the outbox's free megabytes, and it cannot see through our degrading cache.

The status code answers the load balancer: 200 while this process can serve pages, 503 naming the
database, cache or broker that does not answer. The body's "status" answers the operator: "ok",
"degraded" (no Celery worker answers a ping, or the outbox's disk is nearly full: pages are served
but mail waits) naming them under "degraded", or "down". The site keeps serving pages through a
cache or broker outage (config.cache, subscriptions.consent.send_owed_emails): this is where it
shows."""

import shutil
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

from config.cache import DegradingRedisCache
from config.celery import app as celery_app
from digest.matching.semantic import status as semantic_status

PROBE_TIMEOUT_SECONDS = 1
OUTBOX_BACKEND = "config.outbox.OutboxEmailBackend"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache = caches["default"]
    if isinstance(cache, DegradingRedisCache):
        cache.ping()  # the degrading cache would answer a miss, not an error
        return
    cache.set("healthz", "ok", 5)
    if cache.get("healthz") != "ok":
        raise RuntimeError("the cache did not keep a value")


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT_SECONDS) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=PROBE_TIMEOUT_SECONDS)


def _worker() -> None:
    """At least one Celery worker answers a ping (the first answer ends the wait)."""
    with celery_app.connection_for_write() as broker:
        answers = celery_app.control.ping(timeout=PROBE_TIMEOUT_SECONDS, limit=1, connection=broker)
    if not answers:
        raise RuntimeError(f"no Celery worker answered a ping within {PROBE_TIMEOUT_SECONDS} s")


def _outbox_disk() -> None:
    """The outbox folder's disk keeps HEALTH_MIN_FREE_DISK_MB free (or its nearest parent's,
    before the first email creates it)."""
    folder = Path(settings.EMAIL_FILE_PATH).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < settings.HEALTH_MIN_FREE_DISK_MB:
        raise RuntimeError(
            f"{free_mb:,.0f} MB free under {folder}, below HEALTH_MIN_FREE_DISK_MB "
            f"({settings.HEALTH_MIN_FREE_DISK_MB:,} MB)"
        )


def _run(checks: dict[str, Callable[[], None]]) -> dict[str, str]:
    report = {}
    for component, check in checks.items():
        try:
            check()
            report[component] = "ok"
        except Exception as error:  # any failure is this component's, and is what we report
            report[component] = f"error: {type(error).__name__}: {error}"[:300]
    return report


def healthz(request: HttpRequest) -> JsonResponse:
    essential: dict[str, Callable[[], None]] = {"database": _database, "cache": _cache}
    if settings.CELERY_BROKER_URL:
        essential["broker"] = _broker
    report = _run(essential)
    failed = [component for component, state in report.items() if state != "ok"]
    optional: dict[str, Callable[[], None]] = {}
    if settings.CELERY_BROKER_URL and "broker" not in failed:
        optional["worker"] = _worker
    if settings.EMAIL_BACKEND == OUTBOX_BACKEND:
        optional["disk"] = _outbox_disk
    optional_report = _run(optional)
    report.update(optional_report)
    degraded = [component for component, state in optional_report.items() if state != "ok"]
    if failed:
        report["failed"] = failed
    report["semantic"] = semantic_status()  # words alone: degraded, never down
    if not report["semantic"].startswith("ok"):
        degraded.append("semantic")
    if degraded:
        report["degraded"] = degraded
    report["status"] = "down" if failed else "degraded" if degraded else "ok"
    return JsonResponse(report, status=503 if failed else 200)
