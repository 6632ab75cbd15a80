"""/healthz: 200 when the database, the cache and the broker answer; 503 naming the ones that do
not (for load balancers and compose). The site keeps serving pages through a cache or broker
outage (config.cache, subscriptions.consent.send_owed_emails): this is where it shows."""

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

from config.cache import DegradingRedisCache
from digest.matching.semantic import status as semantic_status

PROBE_TIMEOUT_SECONDS = 1


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


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database, "cache": _cache}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _broker
    report = {}
    for component, check in checks.items():
        try:
            check()
            report[component] = "ok"
        except Exception as error:  # any failure is this component's, and is what we report
            report[component] = f"error: {type(error).__name__}: {error}"[:300]
    failed = [component for component, state in report.items() if state != "ok"]
    if failed:
        report["failed"] = failed
    report["semantic"] = semantic_status()  # degraded (words alone), never down
    return JsonResponse(report, status=503 if failed else 200)
