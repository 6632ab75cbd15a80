"""Papers to rate and readers to rate them, for the rating tests."""

from datetime import timedelta

from django.utils import timezone

from digest.ingest.records import title_key
from digest.models import Paper
from subscriptions.models import Subscriber


def make_papers(count: int) -> list[Paper]:
    now = timezone.now()
    return [
        Paper.objects.create(
            title=f"Sparse experts, part {n}",
            title_key=title_key(f"Sparse experts, part {n}"),
            abstract="We route tokens to experts and measure the routing.",
            first_seen=now - timedelta(hours=1),
            last_seen=now,
        )
        for n in range(count)
    ]


def make_reader(email: str = "reader@example.com", **fields) -> Subscriber:
    fields.setdefault("status", Subscriber.Status.ACTIVE)
    return Subscriber.objects.create(email=email, topics="mixture of experts", **fields)
