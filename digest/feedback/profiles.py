"""Reader profiles in the database: learned from a reader's ratings (a Celery task,
digest.tasks.learn_reader_profile, coalesced: a burst of ratings queues one), read by the daily
ranking.

A task's cost is bounded: it reads the reader's latest MAX_RATINGS_LEARNED ratings and the
background word rarity (idf of the latest BACKGROUND_PAPERS papers), which is computed once per
BACKGROUND_CACHE_SECONDS and shared through the cache.
"""

from __future__ import annotations

from django.core.cache import cache

from digest.matching.profile import RatedPaper, idf_of, learn_profile
from digest.models import Paper, Rating, ReaderProfile
from subscriptions import throttling

MAX_RATINGS_LEARNED = 200
BACKGROUND_PAPERS = 2000
BACKGROUND_CACHE_KEY = "profiles:background-idf"
BACKGROUND_CACHE_SECONDS = 6 * 3600
# A queued relearn that has not started after this long is taken for lost (the broker dropped
# it) and the next rating queues another.
RELEARN_CLAIM_SECONDS = 15 * 60


def claim_relearn(subscriber_id: int) -> bool:
    """Whether the caller, having committed a rating, is to queue the reader's relearn: False
    while one queued before has not started yet, since it reads the latest ratings when it does
    (release_relearn comes first in the task)."""
    return throttling.claim("relearn", str(subscriber_id), seconds=RELEARN_CLAIM_SECONDS)


def release_relearn(subscriber_id: int) -> None:
    """A relearn is starting: a rating committed from now on queues the next one."""
    throttling.release("relearn", str(subscriber_id))


def background_idf() -> tuple[dict[str, float], float]:
    """(each word stem's idf over the latest papers, the idf of a stem none of them uses)."""
    cached = cache.get(BACKGROUND_CACHE_KEY)
    if cached is None:
        rows = list(
            Paper.objects.filter(hidden=False)
            .order_by("-first_seen")
            .values_list("title", "abstract")[:BACKGROUND_PAPERS]
        )
        cached = idf_of(rows)
        cache.set(BACKGROUND_CACHE_KEY, cached, BACKGROUND_CACHE_SECONDS)
    return cached


def learn_reader_profile(subscriber_id: int) -> ReaderProfile | None:
    """Learn the reader's profile from their latest ratings and store it (None, and no profile
    kept, when they have no rating left)."""
    rated = list(
        Rating.objects.filter(subscriber_id=subscriber_id)
        .order_by("-rated_at", "-id")
        .values_list("paper__title", "paper__abstract", "value")[:MAX_RATINGS_LEARNED]
    )
    if not rated:
        ReaderProfile.objects.filter(subscriber_id=subscriber_id).delete()
        return None
    idf, unseen_idf = background_idf()
    profile = learn_profile([RatedPaper(*row) for row in rated], idf, unseen_idf=unseen_idf)
    stored, _ = ReaderProfile.objects.update_or_create(
        subscriber_id=subscriber_id,
        defaults={
            "vectors": profile.to_bytes(),
            "liked_titles": profile.liked_titles,
            "ratings_count": len(rated),
        },
    )
    return stored
