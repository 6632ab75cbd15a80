"""One send rate across all workers: ESP_MAX_PER_SECOND and ESP_MAX_PER_HOUR.

Messages are counted in Redis in fixed windows (this second, this hour, by Redis's own clock so
workers' clocks do not matter), checked and counted in one Lua script, so two workers can never
both take the last permit of a window. Our own rather than Celery's rate_limit, which holds per
worker process only. With Redis down, each worker process counts its own windows in memory and
takes a share of each limit (limit / ESP_WORKER_SHARE_DIVISOR): slower, never unlimited.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
KEY_PREFIX = "paperboy:send-rate"
# Longest a sender waits for a permit before it gives the rest of its chunk back for later.
MAX_WAIT_SECONDS = 5.0

# Grants `n` permits if both windows have room. Returns {granted (0/1), seconds to wait, window}.
_TAKE = """
local now = redis.call('TIME')
local second = tonumber(now[1])
local n, per_second, per_hour = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local hour = math.floor(second / 3600)
local second_key = KEYS[1] .. ':s:' .. second
local hour_key = KEYS[1] .. ':h:' .. hour
local in_second = tonumber(redis.call('GET', second_key) or '0')
local in_hour = tonumber(redis.call('GET', hour_key) or '0')
local wait_second = (1000000 - tonumber(now[2])) / 1000000
if per_second > 0 and in_second + n > per_second then
  return {0, tostring(wait_second), second}
end
if per_hour > 0 and in_hour + n > per_hour then
  return {0, tostring((hour + 1) * 3600 - second - 1 + wait_second), second}
end
redis.call('INCRBY', second_key, n)
redis.call('EXPIRE', second_key, 5)
redis.call('INCRBY', hour_key, n)
redis.call('EXPIRE', hour_key, 3700)
return {1, '0', second}
"""


class SendRateExceeded(ConnectionError):
    """No permit within MAX_WAIT_SECONDS: the ESP may take no more now. A ConnectionError, so
    the send path treats it as it treats an ESP that does not answer: what was not handed over
    is put back for later."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"send rate reached; next permit in {retry_in:.1f}s")
        self.retry_in = retry_in


@dataclass(frozen=True)
class Permit:
    granted: bool
    wait: float  # seconds until a permit may be free, when not granted
    window: int  # the second the permit was counted in (Redis's clock, or ours in fallback)
    shared: bool  # counted in Redis (all workers), not in this process only


class _LocalWindows:
    """This process's own count of the current second and hour, for when Redis is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, int]] = {}

    def take(self, n: int, per_second: int, per_hour: int) -> Permit:
        now = time.time()
        second, hour = int(now), int(now // 3600)
        with self.lock:
            in_second = self.counts.get("s", (second, 0))
            in_hour = self.counts.get("h", (hour, 0))
            used_second = in_second[1] if in_second[0] == second else 0
            used_hour = in_hour[1] if in_hour[0] == hour else 0
            if per_second > 0 and used_second + n > per_second:
                return Permit(False, second + 1 - now, second, False)
            if per_hour > 0 and used_hour + n > per_hour:
                return Permit(False, (hour + 1) * 3600 - now, second, False)
            self.counts["s"] = (second, used_second + n)
            self.counts["h"] = (hour, used_hour + n)
        return Permit(True, 0.0, second, False)


_local = _LocalWindows()
_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    url = settings.ESP_RATE_REDIS_URL
    if not url:
        return None
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return _clients[url]


def worker_share(limit: int) -> int:
    """A worker's part of `limit` while the workers cannot count together: at least 1."""
    if limit <= 0:
        return 0
    return max(1, limit // max(1, settings.ESP_WORKER_SHARE_DIVISOR))


def try_take(n: int = 1) -> Permit:
    """`n` permits now if every limit has room for them; never blocks."""
    per_second, per_hour = settings.ESP_MAX_PER_SECOND, settings.ESP_MAX_PER_HOUR
    if per_second <= 0 and per_hour <= 0:
        return Permit(True, 0.0, int(time.time()), True)
    client = _redis()
    if client is not None:
        try:
            granted, wait, window = client.eval(_TAKE, 1, KEY_PREFIX, n, per_second, per_hour)
            return Permit(bool(granted), float(wait), int(window), True)
        except redis.RedisError as error:
            logger.warning("send rate: Redis unavailable, this worker takes its share: %r", error)
    return _local.take(n, worker_share(per_second), worker_share(per_hour))


def take(n: int = 1, *, max_wait: float | None = None) -> Permit:
    """`n` permits, waiting for them up to `max_wait` seconds (MAX_WAIT_SECONDS by default);
    SendRateExceeded past that."""
    max_wait = MAX_WAIT_SECONDS if max_wait is None else max_wait
    waited = 0.0
    while True:
        permit = try_take(n)
        if permit.granted:
            return permit
        if waited + permit.wait > max_wait:
            raise SendRateExceeded(permit.wait)
        time.sleep(permit.wait)
        waited += permit.wait
