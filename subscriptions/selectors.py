"""Read paths other apps use to look at subscribers (digest reads who to send to from here)."""

from django.db.models import QuerySet

from subscriptions.models import Subscriber


def subscribers_for_digests() -> QuerySet[Subscriber]:
    """Confirmed subscribers who currently want digests (paused, unsubscribed, bounced: not)."""
    return Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).order_by("pk")
