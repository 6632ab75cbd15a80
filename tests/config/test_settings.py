import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_DIR

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "cache": settings.CACHES["default"]["BACKEND"],
    "email": settings.EMAIL_BACKEND,
    "anymail": settings.ANYMAIL,
    "site_url": settings.SITE_URL,
}))
"""


def settings_under(env: dict[str, str]) -> dict:
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=PROJECT_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_defaults_need_nothing_running(tmp_path):
    seen = settings_under({"PAPERBOY_VAR_DIR": str(tmp_path)})

    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["name"] == str(tmp_path / "paperboy.sqlite3")
    assert seen["eager"] is True
    assert seen["cache"].endswith("LocMemCache")
    assert seen["email"] == "config.outbox.OutboxEmailBackend"


def test_environment_selects_postgres_redis_and_an_esp():
    seen = settings_under(
        {
            "DATABASE_URL": "postgres://paperboy@db:5432/paperboy",
            "CELERY_BROKER_URL": "redis://redis:6379/0",
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "token-123",
            "ANYMAIL_WEBHOOK_SECRET": "user:pass",
            "SITE_URL": "https://papers.example.com/",
        }
    )

    assert seen["engine"] == "django.db.backends.postgresql"
    assert seen["eager"] is False
    assert seen["cache"] == "config.cache.DegradingRedisCache"
    assert seen["email"] == "anymail.backends.postmark.EmailBackend"
    assert seen["anymail"] == {"POSTMARK_SERVER_TOKEN": "token-123", "WEBHOOK_SECRET": "user:pass"}
    assert seen["site_url"] == "https://papers.example.com"


def deploy_check(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env={
            **clean,
            "DEBUG": "0",
            "SECRET_KEY": "x7!kq2-a-real-production-secret-9d8f7g6h5j4k3l2m1n0b9v8c7x6z5",
            "ALLOWED_HOSTS": "papers.example.com",
            "PAPERBOY_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
    )


def test_deploy_check_is_clean_in_production_mode(tmp_path):
    result = deploy_check(tmp_path, ANYMAIL_WEBHOOK_SECRET="user:pass")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_refuses_an_esp_without_a_webhook_secret(tmp_path):
    esp = {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": "token",
    }

    refused = deploy_check(tmp_path, **esp)
    accepted = deploy_check(tmp_path, **esp, ANYMAIL_WEBHOOK_SECRET="user:pass")

    assert refused.returncode != 0
    assert "subscriptions.E001" in refused.stderr + refused.stdout
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_deploy_check_says_webhooks_are_refused_without_a_secret(tmp_path):
    result = deploy_check(tmp_path)  # the default outbox backend

    assert result.returncode != 0
    assert "subscriptions.W001" in result.stderr + result.stdout
    assert "answer 403" in result.stderr + result.stdout


def test_deploy_check_refuses_mailgun_without_a_webhook_signing_key(tmp_path):
    mailgun = {
        "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
        "ANYMAIL_WEBHOOK_SECRET": "user:pass",
    }

    refused = deploy_check(tmp_path, **mailgun)
    accepted = deploy_check(tmp_path, **mailgun, ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY="key")

    assert refused.returncode != 0
    assert "subscriptions.E002" in refused.stderr + refused.stdout
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
