"""The periodic tasks are editable in the admin, and neither migrate nor beat undoes an edit."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.celery import app as celery_app
from digest.delivery.schedule import SeedingDatabaseScheduler

pytestmark = pytest.mark.django_db


def test_default_schedule_is_in_the_admin_before_beat_ever_ran(admin_client):
    response = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))

    listed = {task.name: task.task for task in response.context["cl"].result_list}
    assert listed == {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    ingest = PeriodicTask.objects.get(name="ingest-sources-daily")
    assert (ingest.crontab.minute, ingest.crontab.hour) == ("30", "5")


def edit_ingest_hour(admin_client, hour: str) -> None:
    crontab = PeriodicTask.objects.get(name="ingest-sources-daily").crontab
    response = admin_client.post(
        reverse("admin:django_celery_beat_crontabschedule_change", args=[crontab.pk]),
        {
            "minute": "15",
            "hour": hour,
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "UTC",
            "periodictask_set-TOTAL_FORMS": "0",
            "periodictask_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302


@pytest.mark.django_db(transaction=True)  # beat closes connections it finds inside a transaction
def test_an_edited_entry_survives_beat_starting(admin_client):
    edit_ingest_hour(admin_client, "6")
    PeriodicTask.objects.filter(name="plan-deliveries").update(enabled=False)

    SeedingDatabaseScheduler(app=celery_app)  # what `celery beat` builds on start

    ingest = PeriodicTask.objects.get(name="ingest-sources-daily")
    assert (ingest.crontab.minute, ingest.crontab.hour) == ("15", "6")
    assert PeriodicTask.objects.get(name="plan-deliveries").enabled is False


def test_migrate_recreates_a_deleted_default_entry_and_leaves_edited_ones(admin_client):
    edit_ingest_hour(admin_client, "4")
    PeriodicTask.objects.filter(name="plan-deliveries").delete()

    call_command("migrate", verbosity=0)

    assert PeriodicTask.objects.get(name="ingest-sources-daily").crontab.hour == "4"
    assert PeriodicTask.objects.get(name="plan-deliveries").crontab.minute == "*/5"
    assert CrontabSchedule.objects.filter(minute="*/5").count() == 1
