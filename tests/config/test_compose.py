"""No Docker engine runs here, so docker-compose.yml is kept honest by reading it."""

import re

import yaml
from django.conf import settings

from tests.conftest import PROJECT_DIR

COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_stack_has_every_part_of_production():
    assert {"postgres", "redis", "web", "worker", "beat", "mailcatcher"} <= set(SERVICES)


def test_postgres_and_redis_have_healthchecks():
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]


def test_app_commands_refer_to_modules_that_exist():
    assert "config.wsgi" in SERVICES["web"]["command"]
    assert (PROJECT_DIR / "config" / "wsgi.py").exists()
    for name in ("worker", "beat"):
        assert SERVICES[name]["command"].startswith("celery -A config ")
    assert (PROJECT_DIR / "config" / "celery.py").exists()
    assert "manage.py migrate" in SERVICES["migrate"]["command"]


def test_beat_runs_the_scheduler_that_keeps_admin_edits():
    # A --scheduler flag would override the settings' SeedingDatabaseScheduler with one that
    # resets the operator's edits on every start.
    assert "--scheduler" not in SERVICES["beat"]["command"]
    assert settings.CELERY_BEAT_SCHEDULER == "digest.delivery.schedule:SeedingDatabaseScheduler"


def test_app_services_wait_for_healthy_dependencies():
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_env_example_lists_every_setting_the_app_reads():
    settings_source = (PROJECT_DIR / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:_bool|_list|iron\.get)?\("([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'environ\.get\("([A-Z_]+)"', settings_source))
    example = (PROJECT_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    local_only = {"PAPERBOY_VAR_DIR", "TEST_DATABASE_NAME", "EMAIL_FILE_PATH", "LOG_LEVEL"}
    missing = read - listed - local_only
    assert not missing, f".env.example does not mention {sorted(missing)}"
