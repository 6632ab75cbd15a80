"""A Redis cache whose outage is not a site outage.

Ours, not django-redis with IGNORE_EXCEPTIONS: that swallows the error but tries Redis again on
every call, so each page still waits out the connection timeout; this one stops trying for
RETRY_AFTER_SECONDS after a failure, on top of Django's own RedisCache (no extra dependency).

Django's RedisCache raises redis.ConnectionError from every call when Redis is unreachable, so one
cached fragment on the home page turned a cache outage into a 500 on every page. Here a failed
call is logged and answered as a miss (reads) or as not done (writes, and `add`, so a lock taken
in the cache is never thought held by two); after a failure Redis is not tried again for
RETRY_AFTER_SECONDS, so pages do not each wait on a connection that will fail. Rate limits do
not rely on this: subscriptions.throttling counts in the database while Redis is down.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5.0
T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis did not answer (or failed recently and is not tried again yet)."""


class DegradingRedisCache(RedisCache):
    _down_until = 0.0  # per process: monotonic time before which Redis is not tried

    def attempt(self, call: Callable[[], T]) -> T:
        """`call()` (which talks to Redis); RedisUnavailable when Redis fails or failed lately."""
        if time.monotonic() < self._down_until:
            raise RedisUnavailable("Redis failed less than RETRY_AFTER_SECONDS ago")
        try:
            return call()
        except redis.RedisError as error:
            logger.warning("Cache unavailable, degrading for %ss: %r", RETRY_AFTER_SECONDS, error)
            type(self)._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            raise RedisUnavailable(repr(error)) from error

    def mark_available(self) -> None:
        type(self)._down_until = 0.0

    def _degrade(self, operation: str, fallback, *args):
        method = getattr(super(), operation)
        try:
            return self.attempt(lambda: method(*args))
        except RedisUnavailable:
            return fallback

    def get(self, key, default=None, version=None):
        return self._degrade("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._degrade("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._degrade("has_key", False, key, version)

    def set(self, key, value, timeout=..., version=None):
        timeout = self.default_timeout if timeout is ... else timeout
        return self._degrade("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=..., version=None):
        timeout = self.default_timeout if timeout is ... else timeout
        return self._degrade("set_many", list(data), data, timeout, version)

    def add(self, key, value, timeout=..., version=None):
        timeout = self.default_timeout if timeout is ... else timeout
        return self._degrade("add", False, key, value, timeout, version)

    def touch(self, key, timeout=..., version=None):
        timeout = self.default_timeout if timeout is ... else timeout
        return self._degrade("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._degrade("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._degrade("delete_many", None, keys, version)

    def clear(self):
        return self._degrade("clear", False)

    def ping(self) -> None:
        """Raise RedisUnavailable unless Redis answers now (for /healthz: tried every time)."""
        try:
            self._cache.get_client(write=True).ping()
        except redis.RedisError as error:
            type(self)._down_until = time.monotonic() + RETRY_AFTER_SECONDS
            raise RedisUnavailable(repr(error)) from error
        self.mark_available()
