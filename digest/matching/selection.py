"""Selection from the database: each subscriber's candidate papers, what they were already sent,
and their digest; the database is asked a fixed number of questions whatever their number."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import Max

from digest.matching.explanations import Match, to_matches
from digest.matching.paper_index import PaperIndex
from digest.matching.ranking import Interest, rank
from digest.matching.text import parse_topic_lines
from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

FIRST_DIGEST_WINDOW = timedelta(days=7)
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
    for ids in _chunks([s.id for s in subscribers]):
        delivered = DeliveredPaper.objects.filter(
            delivery__subscriber_id__in=ids,
            delivery__status=Delivery.Status.SENT,
            paper__first_seen__gte=earliest,
        ).values_list("delivery__subscriber_id", "paper_id")
        for subscriber_id, paper_id in delivered:
            if paper_id in position:
                sent_rows.append(row_of[subscriber_id])
                sent_cols.append(position[paper_id])
    interests = []
    for s in subscribers:
        topics, exclusions = parse_topic_lines(s.topic_lines)
        interests.append(
            Interest(topics, exclusions, s.papers_per_digest, starts[s.id].timestamp())
        )
    ids, titles, abstracts, upvotes, seen, pinned, first_seen = zip(*papers, strict=True)
    index = PaperIndex.build(titles, abstracts)
    picks = rank(
        index,
        interests,
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
        first_seen=[moment.timestamp() for moment in first_seen],
        already_sent=(sent_rows, sent_cols),
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
    index = PaperIndex.build(titles, abstracts)
    picks = rank(
        index,
        [Interest(topics, exclusions, limit)],
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
    )
    return to_matches(index, picks, ids, pinned)[0]
