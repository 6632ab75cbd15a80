"""Selection from the database: each subscriber's candidate papers, what they were already sent,
and their digest; the database is asked a fixed number of questions whatever their number."""

from __future__ import annotations

import re
from collections.abc import Sequence
from copy import copy
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from digest.matching.explanations import Match, to_matches
from digest.matching.paper_index import PaperIndex
from digest.matching.profile import Profile
from digest.matching.ranking import Interest, rank
from digest.matching.semantic import configured_model
from digest.matching.semantic_blend import liked_line
from digest.matching.text import parse_topic_lines
from digest.matching.vectors import (
    embed_topic_lines,
    liked_vectors,
    load_paper_vectors,
    topic_vectors_for,
)
from digest.models import DeliveredPaper, Delivery, Paper, Rating, ReaderProfile
from subscriptions.models import Subscriber

FIRST_DIGEST_WINDOW = timedelta(days=7)
PROMISED = (Delivery.Status.SENT, Delivery.Status.SENDING, Delivery.Status.PLANNED)
QUERY_CHUNK = 30_000  # ids per IN (...) clause: under SQLite's 32,766 parameters


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + QUERY_CHUNK] for i in range(0, len(ids), QUERY_CHUNK)]


def window_starts(subscribers: Sequence[Subscriber], *, now: datetime) -> dict[int, datetime]:
    """Each subscriber's candidate window: since their previous sent digest for a daily one, the
    past 7 days for a weekly or a first digest (never more than 7 days)."""
    previous: dict[int, datetime] = {}
    daily = [s.id for s in subscribers if s.frequency != Subscriber.Frequency.WEEKLY]
    for ids in _chunks(daily):
        # Planned (created) rather than sent time: a paper that arrived while the previous digest
        # was being sent is still in this window; the already-sent rule drops any overlap.
        rows = (
            Delivery.objects.filter(subscriber_id__in=ids, status=Delivery.Status.SENT)
            .values("subscriber_id")
            .annotate(last=Max("created_at"))
        )
        previous.update({row["subscriber_id"]: row["last"] for row in rows})
    floor = now - FIRST_DIGEST_WINDOW
    return {s.id: max(previous.get(s.id, floor), floor) for s in subscribers}


def profiles_of(subscriber_ids: Sequence[int]) -> dict[int, Profile]:
    """The stored profiles of these readers (digest.feedback.profiles learns them)."""
    profiles = {}
    for ids in _chunks(subscriber_ids):
        rows = ReaderProfile.objects.filter(subscriber_id__in=ids).values_list(
            "subscriber_id", "vectors", "liked_titles"
        )
        for subscriber_id, vectors, titles in rows:
            profiles[subscriber_id] = Profile.from_bytes(bytes(vectors), titles)
    return profiles


def not_again(subscriber_ids: Sequence[int], *, since: datetime) -> list[tuple[int, int]]:
    """(subscriber id, paper id) of the papers first seen since `since` that a reader must not
    get: those of their digests sent or on their way (a digest still retrying will bring its
    papers), and those they rated (a paper rated down, never at all)."""
    pairs: list[tuple[int, int]] = []
    for ids in _chunks(subscriber_ids):
        pairs += DeliveredPaper.objects.filter(
            delivery__subscriber_id__in=ids,
            delivery__status__in=PROMISED,
            paper__first_seen__gte=since,
        ).values_list("delivery__subscriber_id", "paper_id")
        pairs += Rating.objects.filter(
            subscriber_id__in=ids, paper__first_seen__gte=since
        ).values_list("subscriber_id", "paper_id")
    return pairs


def semantic_on() -> bool:
    """Whether rankings blend meaning in: a weight above 0 and a usable model (without one,
    words alone, and one warning in the log)."""
    return settings.SEMANTIC_WEIGHT > 0 and configured_model() is not None


def embed_new_topic_lines(subscribers: Sequence[Subscriber]) -> int:
    """Embed the subscribers' topic lines that have no vector yet (how many; 0 with the model
    off). A planner calls it before its round's transaction: rows upserted inside it stay
    locked until the round commits, and slices planned at once share lines."""
    if not semantic_on():
        return 0
    return embed_topic_lines(
        line for s in subscribers for line in parse_topic_lines(s.topic_lines)[0]
    )


def semantic_inputs(
    subscribers: Sequence[Subscriber], interests: list[Interest], paper_ids: list[int]
) -> dict:
    """rank()'s semantic arguments: the papers' stored vectors and the topic lines' (lines
    without one are embedded now, each distinct line once); a reader's liked papers join their
    interest as one more line (semantic_blend.liked_line). Empty when the model is off."""
    if not semantic_on():
        return {}
    paper_vectors = load_paper_vectors(paper_ids)
    if not paper_vectors.any():
        return {}
    topic_vectors = topic_vectors_for(t for interest in interests for t in interest.topics)
    for row, (subscriber_id, vector) in _liked_rows(subscribers, interests):
        line = liked_line(subscriber_id)
        topic_vectors[line] = vector
        interests[row].topics = [*interests[row].topics, line]
    return {
        "paper_vectors": paper_vectors,
        "topic_vectors": topic_vectors,
        "semantic_weight": settings.SEMANTIC_WEIGHT,
    }


def _liked_rows(
    subscribers: Sequence[Subscriber], interests: list[Interest]
) -> list[tuple[int, tuple[int, np.ndarray]]]:
    liked = liked_vectors([s.id for s in subscribers if s.id is not None])
    return [
        (row, (s.id, liked[s.id]))
        for row, s in enumerate(subscribers)
        if s.id in liked and interests[row].topics
    ]


def select_papers(subscribers: Sequence[Subscriber], *, now: datetime) -> dict[int, list[Match]]:
    """Each subscriber's digest, best first (an empty list: nothing relevant)."""
    subscribers = list(subscribers)
    if not subscribers:
        return {}
    starts = window_starts(subscribers, now=now)
    earliest = min(starts.values())
    papers = list(
        Paper.objects.filter(hidden=False, first_seen__gte=earliest, first_seen__lte=now)
        .order_by("id")
        .values_list("id", "title", "abstract", "upvotes", "seen_count", "pinned", "first_seen")
    )
    if not papers:
        return {s.id: [] for s in subscribers}
    position = {row[0]: i for i, row in enumerate(papers)}
    row_of = {s.id: i for i, s in enumerate(subscribers)}
    sent_rows, sent_cols = [], []
    for subscriber_id, paper_id in not_again([s.id for s in subscribers], since=earliest):
        if paper_id in position:
            sent_rows.append(row_of[subscriber_id])
            sent_cols.append(position[paper_id])
    profiles = profiles_of([s.id for s in subscribers])
    interests = []
    for s in subscribers:
        topics, exclusions = parse_topic_lines(s.topic_lines)
        interests.append(
            Interest(
                topics,
                exclusions,
                s.papers_per_digest,
                starts[s.id].timestamp(),
                profile=profiles.get(s.id),
            )
        )
    ids, titles, abstracts, upvotes, seen, pinned, first_seen = zip(*papers, strict=True)
    index = PaperIndex.of(titles, abstracts)
    picks = rank(
        index,
        interests,
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
        first_seen=[moment.timestamp() for moment in first_seen],
        already_sent=(sent_rows, sent_cols),
        **semantic_inputs(subscribers, interests, list(ids)),
    )
    matches = to_matches(index, picks, ids, pinned)
    return {s.id: chosen for s, chosen in zip(subscribers, matches, strict=True)}


def search_papers(query: str, *, limit: int = 10) -> list[Match]:
    """All visible papers ranked for one interest (lines or ';'-separated topics, '-word'
    excludes), exactly as a digest would rank them."""
    topics, exclusions = parse_topic_lines(re.split(r"[;\n]", query))
    papers = list(
        Paper.objects.filter(hidden=False)
        .order_by("id")
        .values_list("id", "title", "abstract", "upvotes", "seen_count", "pinned")
    )
    if not papers or not topics:
        return []
    ids, titles, abstracts, upvotes, seen, pinned = zip(*papers, strict=True)
    index = PaperIndex.of(titles, abstracts)
    picks = rank(
        index,
        [Interest(topics, exclusions, limit)],
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
    )
    return to_matches(index, picks, ids, pinned)[0]


def search_papers_for(subscriber: Subscriber, *, limit: int | None = None) -> list[Match]:
    """The papers `subscriber`'s next digest would hold if it were made now, best first: their
    topics, exclusions and profile, without what they were sent or rated."""
    if limit is not None:
        subscriber = copy(subscriber)
        subscriber.papers_per_digest = limit
    return select_papers([subscriber], now=timezone.now())[subscriber.id]
