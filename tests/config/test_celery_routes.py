"""Which Celery queue each task is sent to, as Celery's own router reads config/settings.py, with
and without CELERY_QUEUE_PER_STAGE; and the compose file's worker consumes every one of them."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import PROJECT_DIR

TASKS = [
    "digest.tasks.ingest_sources",
    "digest.tasks.embed_papers",
    "digest.tasks.plan_and_send",
    "digest.tasks.plan_slice",
    "digest.tasks.embed_reader_topics",
    "digest.tasks.send_deliveries",
    "digest.tasks.send_delivery",
    "digest.tasks.learn_reader_profile",
    "subscriptions.tasks.send_consent_email",
    "subscriptions.tasks.send_owed_emails",
]
PRINT_ROUTES = f"""
import json, django
django.setup()
from django.conf import settings
from config.celery import app
print(json.dumps({{
    "queues": [queue.name for queue in settings.CELERY_TASK_QUEUES],
    "routes": {{name: app.amqp.router.route({{}}, name)["queue"].name for name in {TASKS!r}}},
}}))
"""
ALWAYS = {
    "digest.tasks.learn_reader_profile": "feedback",
    "subscriptions.tasks.send_consent_email": "consent",
    "subscriptions.tasks.send_owed_emails": "consent",
}
PER_STAGE = {
    "digest.tasks.ingest_sources": "ingest",
    "digest.tasks.embed_papers": "ingest",
    "digest.tasks.plan_and_send": "rank",
    "digest.tasks.plan_slice": "rank",
    "digest.tasks.embed_reader_topics": "rank",
    "digest.tasks.send_deliveries": "send",
    "digest.tasks.send_delivery": "send",
}


def routes_under(per_stage: str) -> dict:
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env |= {"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CELERY_QUEUE_PER_STAGE": per_stage}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_ROUTES],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("per_stage", ["0", "1"])
def test_each_task_goes_to_its_queue_and_every_queue_is_declared(per_stage):
    seen = routes_under(per_stage)

    stages = PER_STAGE if per_stage == "1" else dict.fromkeys(PER_STAGE, "celery")
    assert seen["routes"] == ALWAYS | stages
    assert sorted(seen["queues"]) == sorted({"celery", *seen["routes"].values()})


def test_the_compose_worker_consumes_every_queue_of_either_setting():
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    command = compose["services"]["worker"]["command"].split()
    consumed = set(command[command.index("-Q") + 1].split(","))

    assert consumed == {"celery", *ALWAYS.values(), *PER_STAGE.values()}
