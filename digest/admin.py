"""Admin autodiscovery imports this module; the admin itself lives in digest/desk/admin/.

The desk's buttons ask through digest.desk.signals (no wing imports tasks.py); here, at the edge,
the asks become Celery tasks. A broker outage reaches the admin page as the receiver's exception,
and the page says so."""

from django.dispatch import receiver

from digest import tasks
from digest.desk import admin  # noqa: F401 - registers the digest models
from digest.desk.signals import ingest_requested, resend_requested


@receiver(ingest_requested, dispatch_uid="desk-ingest")
def ingest_when_requested(sender, **kwargs) -> None:
    """An editor's "Run ingest now"."""
    tasks.ingest_sources.delay()


@receiver(resend_requested, dispatch_uid="desk-resend")
def resend_when_requested(sender, delivery_ids: list[int], **kwargs) -> None:
    """Failed deliveries an editor retried, reset to planned."""
    tasks.queue_sends(delivery_ids)
