"""Fixed-window counters in the shared cache (Redis in production), so every web process sees the
same count; while Redis is down they are kept in the database instead (ThrottleWindow), so an
outage of the cache never turns the limits off. Also claims: one holder per key until released or
lapsed, always in the database.

Ours rather than django-ratelimit: its counts live in the cache alone, so a Redis outage turns
every limit off (or fails every request), where these carry on in the database."""

import hashlib
from datetime import timedelta

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from config.cache import DegradingRedisCache, RedisUnavailable
from subscriptions.models import ThrottleWindow

HOUR = 60 * 60


def allow(scope: str, key: str, *, limit: int, window: int = HOUR) -> bool:
    """Count one hit for `key` in `scope`; False once more than `limit` hits fall in the window."""
    digest = hashlib.sha256(key.lower().encode()).hexdigest()[:24]  # no address in the cache
    return _count(f"throttle:{scope}:{digest}", window) <= limit


def _redis_client(backend: RedisCache):
    """One client per cache connection (Django's cache builds a new one for every call)."""
    client = getattr(backend, "_throttling_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)
        backend._throttling_client = client
    return client


def _count(cache_key: str, window: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        try:
            return _count_in_redis(backend, cache_key, window)
        except (redis.RedisError, RedisUnavailable):
            return _count_in_database(cache_key, window)
    backend.add(cache_key, 0, timeout=window)
    try:
        return backend.incr(cache_key)
    except ValueError:  # expired between add and incr: this hit opens a new window
        backend.set(cache_key, 1, timeout=window)
        return 1


def _count_in_redis(backend: RedisCache, cache_key: str, window: int) -> int:
    if isinstance(backend, DegradingRedisCache):
        return backend.attempt(lambda: _pipelined_count(backend, cache_key, window))
    return _pipelined_count(backend, cache_key, window)


def _pipelined_count(backend: RedisCache, cache_key: str, window: int) -> int:
    # One round trip: open the window if it is not open yet, then count this hit.
    key = backend.make_and_validate_key(cache_key)
    pipeline = _redis_client(backend).pipeline(transaction=False)
    pipeline.set(key, 0, ex=window, nx=True)
    pipeline.incr(key)
    return pipeline.execute()[1]


def _count_in_database(cache_key: str, window: int) -> int:
    """The same fixed window, in a row locked for the increment."""
    now = timezone.now()
    with transaction.atomic():
        row, created = ThrottleWindow.objects.select_for_update().get_or_create(
            key=cache_key, defaults={"hits": 1, "ends_at": now + timedelta(seconds=window)}
        )
        if created:
            return 1
        if row.ends_at <= now:
            row.hits, row.ends_at = 0, now + timedelta(seconds=window)
        row.hits += 1
        row.save(update_fields=["hits", "ends_at"])
        return row.hits


def claim(scope: str, key: str, *, seconds: int) -> bool:
    """Take the one claim on `key` in `scope`: True for the caller who takes it, False while
    someone holds it (until they release it, or `seconds` have passed: a holder that died).
    Kept in the database whatever the cache does: a claim lost with the cache would let two
    take it, and one the cache could not release would hold everyone off until it lapsed."""
    return _count_in_database(_claim_key(scope, key), seconds) == 1


def release(scope: str, key: str) -> None:
    ThrottleWindow.objects.filter(key=_claim_key(scope, key)).delete()


def _claim_key(scope: str, key: str) -> str:
    return f"claim:{scope}:{key}"[:100]


def forget_expired_windows() -> None:
    ThrottleWindow.objects.filter(ends_at__lt=timezone.now()).delete()


def client_ip(request: HttpRequest) -> str:
    """The socket's address, or the one the last trusted proxy saw when proxies are configured."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")
