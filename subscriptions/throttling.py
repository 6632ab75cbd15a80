"""Fixed-window counters in the shared cache (Redis in production), so every web process sees the
same count."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

HOUR = 60 * 60


def allow(scope: str, key: str, *, limit: int, window: int = HOUR) -> bool:
    """Count one hit for `key` in `scope`; False once more than `limit` hits fall in the window."""
    digest = hashlib.sha256(key.lower().encode()).hexdigest()[:24]  # no address in the cache
    cache_key = f"throttle:{scope}:{digest}"
    cache.add(cache_key, 0, timeout=window)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this hit opens a new window
        cache.set(cache_key, 1, timeout=window)
        count = 1
    return count <= limit


def client_ip(request: HttpRequest) -> str:
    """The socket's address, or the one the last trusted proxy saw when proxies are configured."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")
