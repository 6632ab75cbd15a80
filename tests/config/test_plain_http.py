"""`.env.example` as it is serves a working sign-up over plain http (DEBUG=0, HTTPS=0); with
HTTPS=1, as its comment says for production, `check --deploy` is clean."""

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import PROJECT_DIR

# A browser on http:// keeps no cookie marked Secure, so the sign-up POST goes without it.
SIGN_UP_OVER_HTTP = """
import json, re, django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("collectstatic", "--noinput", verbosity=0)
client = Client(enforce_csrf_checks=True, HTTP_HOST="localhost")
home = client.get("/")
secure = sorted(name for name, morsel in client.cookies.items() if morsel["secure"])
for name in secure:
    del client.cookies[name]
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.content.decode())
posted = client.post("/subscribe/", {
    "csrfmiddlewaretoken": token.group(1) if token else "", "email": "ada@example.org",
    "topics": "llms", "frequency": "daily", "weekday": "0", "send_hour": "7",
    "time_zone": "UTC", "website": "",
}, follow=True)
print(json.dumps({"home": home.status_code, "secure_cookies": secure,
                  "sign_up": posted.status_code, "page": posted.content.decode()}))
"""


REAL_KEY = "x7!kq2-a-real-production-secret-9d8f7g6h5j4k3l2m1n0b9v8c7x6z5"


def env_example() -> dict[str, str]:
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def run_with(tmp_path, script_args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    return subprocess.run(
        [sys.executable, *script_args],
        cwd=PROJECT_DIR,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PAPERBOY_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
    )


def sign_up_with(tmp_path, migrated_database, **overrides: str) -> dict:
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated_database, database)
    local = {  # the compose services this test does not run
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": "",
        "CACHE_URL": "",
        "EMAIL_BACKEND": "config.outbox.OutboxEmailBackend",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = run_with(
        tmp_path, ["-c", SIGN_UP_OVER_HTTP], **{**env_example(), **local, **overrides}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_example_configuration_signs_up_over_plain_http(tmp_path, migrated_database):
    seen = sign_up_with(tmp_path, migrated_database)

    assert env_example()["DEBUG"] == "0"
    assert (seen["home"], seen["secure_cookies"], seen["sign_up"]) == (200, [], 200)
    assert "Check your inbox" in seen["page"]


def test_with_https_the_cookies_are_secure_and_plain_http_is_redirected(
    tmp_path, migrated_database
):
    seen = sign_up_with(tmp_path, migrated_database, HTTPS="1")

    assert seen["home"] == 301  # to https://, where the secure cookies work


def test_the_example_with_https_on_passes_the_deploy_check(tmp_path):
    production = {
        **env_example(),
        "HTTPS": "1",
        "SECRET_KEY": REAL_KEY,
    }

    result = run_with(
        tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **production
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_example_as_it_is_is_flagged_by_the_deploy_check_as_not_https(tmp_path):
    result = run_with(
        tmp_path,
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        **{**env_example(), "SECRET_KEY": REAL_KEY},
    )

    assert result.returncode == 1
    assert "SESSION_COOKIE_SECURE" in result.stderr + result.stdout
