from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _install_default_schedule(sender, using: str = "default", **kwargs) -> None:
    # After `migrate`, so an editor sees the periodic tasks in the admin before beat ever ran.
    if "django_celery_beat_periodictask" not in connections[using].introspection.table_names():
        return
    from digest.schedule import install_default_schedule

    install_default_schedule()


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digest"

    def ready(self) -> None:
        post_migrate.connect(_install_default_schedule, sender=self)
