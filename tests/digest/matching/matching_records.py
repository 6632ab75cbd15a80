"""Papers, readers and sent digests for the matching tests."""

from datetime import UTC, datetime, timedelta

from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
FILLER = (
    "We study optimization of neural networks on standard benchmarks and report results that "
    "improve over strong baselines across several settings and datasets."
)


def make_paper(title: str, abstract: str = FILLER, *, days_ago: float = 1, **fields) -> Paper:
    first_seen = NOW - timedelta(days=days_ago)
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=first_seen,
        last_seen=first_seen,
        **fields,
    )


def make_subscriber(topics: str, **fields) -> Subscriber:
    fields.setdefault("email", f"reader{Subscriber.objects.count()}@example.com")
    return Subscriber.objects.create(status=Subscriber.Status.ACTIVE, topics=topics, **fields)


def titles(matches) -> list[str]:
    by_id = dict(Paper.objects.values_list("id", "title"))
    return [by_id[m.paper_id] for m in matches]


def background() -> None:
    """Unrelated papers, so that word rarity (idf) behaves as in a real listing."""
    for i, subject in enumerate(
        [
            "Graph neural networks for molecule property prediction",
            "Speech recognition with streaming transformers",
            "Robot grasping from tactile sensing",
            "Federated learning under client drift",
            "Protein structure prediction at scale",
            "Image segmentation with weak labels",
        ]
    ):
        make_paper(f"{subject} {i}")


def send(subscriber: Subscriber, papers: list[Paper], *, when: datetime) -> Delivery:
    delivery = Delivery.objects.create(
        subscriber=subscriber, period=when.date(), status=Delivery.Status.SENT, sent_at=when
    )
    Delivery.objects.filter(pk=delivery.pk).update(created_at=when)
    for position, paper in enumerate(papers):
        DeliveredPaper.objects.create(delivery=delivery, paper=paper, position=position, score=1)
    return delivery
