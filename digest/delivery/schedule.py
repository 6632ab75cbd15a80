"""The periodic tasks live in the database (django-celery-beat), so editors change them in the
admin without a deploy. `CELERY_BEAT_SCHEDULE` in the settings only seeds them."""

from django.conf import settings
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry


def install_default_schedule(schedule: dict | None = None) -> list[str]:
    """Create the periodic tasks of `CELERY_BEAT_SCHEDULE` that do not exist yet; return their
    names. Existing ones are left as an editor may have changed them."""
    schedule = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    existing = set(PeriodicTask.objects.filter(name__in=schedule).values_list("name", flat=True))
    created = []
    for name, entry in schedule.items():
        if name not in existing:
            PeriodicTask.objects.create(name=name, **ModelEntry._unpack_fields(**entry))
            created.append(name)
    return created


class SeedingDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, except that starting beat never resets the entries an
    editor changed in the admin (the stock one rewrites them from the settings on every start)."""

    def update_from_dict(self, mapping: dict) -> None:
        existing = PeriodicTask.objects.filter(name__in=mapping).values_list("name", flat=True)
        missing = {name: entry for name, entry in mapping.items() if name not in set(existing)}
        super().update_from_dict(missing)
