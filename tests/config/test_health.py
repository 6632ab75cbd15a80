import pytest
from django.core.cache import cache


@pytest.mark.django_db
def test_healthz_answers_when_database_and_cache_do(client, settings):
    response = client.get("/healthz")

    assert response.status_code == 200
    expected = {"database": "ok", "cache": "ok"}
    if settings.CELERY_BROKER_URL:
        expected["broker"] = "ok"
    report = response.json()
    assert report.pop("semantic").startswith("ok: ")
    assert report == expected


def test_cache_is_the_real_redis_when_services_run(redis_url, settings):
    import redis

    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("paperboy-probe", "seen", 30)
    raw = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert any(b"paperboy-probe" in key for key in raw.keys("*paperboy-probe*"))
