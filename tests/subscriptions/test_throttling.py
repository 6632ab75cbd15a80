"""subscriptions.throttling: counters in the shared cache."""

from datetime import timedelta

import pytest
import redis
from django.test import RequestFactory
from django.utils import timezone

from subscriptions import throttling
from subscriptions.models import ThrottleWindow


def test_allows_up_to_the_limit_then_refuses():
    results = [throttling.allow("test", "198.51.100.1", limit=3) for _ in range(5)]

    assert results == [True, True, True, False, False]
    assert throttling.allow("test", "198.51.100.2", limit=3) is True
    assert throttling.allow("other-scope", "198.51.100.1", limit=3) is True


def test_addresses_count_case_insensitively():
    throttling.allow("address", "Ada@Example.org", limit=1)

    assert throttling.allow("address", "ada@example.org", limit=1) is False


@pytest.mark.services
def test_counts_live_in_redis_where_every_web_process_sees_them(settings, redis_url):
    location = settings.CACHES["default"].get("LOCATION", "")
    if not location.startswith("redis"):
        pytest.fail("the services pass must run with CACHE_URL pointing at Redis")
    throttling.allow("shared", "203.0.113.5", limit=2)
    client = redis.Redis.from_url(location)
    [key] = client.keys("*throttle:shared:*")
    assert int(client.get(key)) == 1
    assert "203.0.113.5" not in key.decode()

    client.incr(key)  # a hit counted by another web process

    assert throttling.allow("shared", "203.0.113.5", limit=2) is False


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.1"),
        (1, "1.2.3.4, 5.6.7.8", "5.6.7.8"),
        (2, "1.2.3.4, 5.6.7.8", "1.2.3.4"),
        (2, "5.6.7.8", "10.0.0.1"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert throttling.client_ip(request) == expected


@pytest.mark.django_db
def test_a_claim_has_one_holder_until_released():
    assert throttling.claim("job", "7", seconds=60) is True
    assert throttling.claim("job", "7", seconds=60) is False
    assert throttling.claim("job", "8", seconds=60) is True
    throttling.release("job", "7")

    assert throttling.claim("job", "7", seconds=60) is True


@pytest.mark.django_db
def test_a_claim_whose_holder_died_lapses():
    assert throttling.claim("job", "7", seconds=60) is True
    ThrottleWindow.objects.update(ends_at=timezone.now() - timedelta(seconds=1))

    assert throttling.claim("job", "7", seconds=60) is True
    assert throttling.claim("job", "7", seconds=60) is False


@pytest.mark.django_db
def test_claims_live_in_the_database_whatever_the_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.DegradingRedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    assert throttling.claim("job", "7", seconds=60) is True
    assert throttling.claim("job", "7", seconds=60) is False
    assert ThrottleWindow.objects.filter(key="claim:job:7").exists()
