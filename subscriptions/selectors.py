"""Read paths other apps use to look at subscribers (digest reads who to send to from here)."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from subscriptions.models import Subscriber


def subscribers_for_digests(now: datetime | None = None) -> QuerySet[Subscriber]:
    """Confirmed subscribers who want digests at `now`: active ones, and paused ones whose pause
    ended by then even if beat has not marked them active yet (pauses.end_pauses); paused,
    unsubscribed, bounced: not."""
    ended_pause = Q(status=Subscriber.Status.PAUSED, paused_until__lte=now or timezone.now())
    active = Q(status=Subscriber.Status.ACTIVE)
    return Subscriber.objects.filter(active | ended_pause).order_by("pk")
