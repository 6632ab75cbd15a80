"""Ranking: one sparse product scores every distinct topic line against every paper; each
subscriber keeps the best of their topic lines, then masks (window, already sent, exclusions,
threshold) and a top-k pick the digest. Nothing loops over subscriber × paper pairs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
from scipy import sparse

from digest.matching.allocation import without_cycle_collection
from digest.matching.paper_index import RELEVANCE_THRESHOLD, PaperIndex
from digest.matching.profile import Profile, concatenated_ranges, numbered
from digest.matching.profile_ranking import Profiles
from digest.matching.semantic_blend import SEMANTIC_WEIGHT, semantic_relevance

TREND_WEIGHT = 0.15  # trending lifts relevance by at most this fraction
PIN_BONUS = 10.0  # pinned papers that match sort before everything else
SUBSCRIBER_CHUNK = 1024  # subscribers scored together in one dense block


def trend(upvotes: np.ndarray, seen_counts: np.ndarray) -> np.ndarray:
    """0..1: upvotes on a log scale (500 is the top), a little for being seen on several days."""
    votes = np.minimum(np.log1p(np.maximum(upvotes, 0)) / math.log1p(500), 1.0)
    days = np.minimum(np.maximum(seen_counts - 1, 0) / 4, 1.0)
    return (0.8 * votes + 0.2 * days).astype(np.float32)


# --- ranking -------------------------------------------------------------------------------------


@dataclass
class Interest:
    topics: Sequence[str]
    exclusions: Sequence[str] = ()
    limit: int = 10
    since: float = -math.inf  # papers first seen before this (timestamp) are out of its window
    profile: Profile | None = None


@dataclass
class Picks:
    """Every interest's papers, best first, as flat arrays: interest i owns the next counts[i]."""

    topics: list[str]  # distinct topic lines; `lines` index into it
    counts: np.ndarray
    papers: np.ndarray
    lines: np.ndarray  # -1: picked on the profile alone
    scores: np.ndarray
    liked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    liked_titles: list[str] = field(default_factory=list)  # `liked` indexes it; -1: none
    close: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # meaning decided


def _topic_slots(interests: Sequence[Interest]) -> tuple[list[str], np.ndarray]:
    """(distinct topic lines, interests × max lines array of their indices, -1 padded)."""
    counts = np.fromiter((len(i.topics) for i in interests), dtype=np.int64, count=len(interests))
    topics, lines = numbered(chain.from_iterable(i.topics for i in interests))
    slots = np.full((len(interests), int(counts.max(initial=0)) or 1), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(interests)), counts)
    columns = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    slots[rows, columns] = lines
    return topics, slots


def _pairs_matrix(rows: Sequence[int], cols: Sequence[int], shape: tuple[int, int]):
    values = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((values, (np.asarray(rows), np.asarray(cols))), shape=shape)


def _zero_pairs(block: np.ndarray, pairs: sparse.csr_matrix) -> None:
    """Set block[i, j] = 0 wherever pairs (a CSR slice of the same rows) has an entry."""
    if pairs.nnz:
        block[np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr)), pairs.indices] = 0


def top_k(keys: np.ndarray, k: int, *, group: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of each row's k largest values, largest first.

    Two small selections instead of one over the whole row: split the columns into blocks (block
    b holds columns b, b + m, b + 2m...), keep the k blocks with the largest maxima (they hold
    the k largest values), then select among those k × group candidates."""
    n, width = keys.shape
    k = min(k, width)
    if (pad := -width % group) > 0:  # padding never outranks a real column
        keys = np.pad(keys, ((0, 0), (0, pad)), constant_values=-np.inf)
    blocks = keys.shape[1] // group
    strided = keys.reshape(n, group, blocks)
    kept = min(k, blocks)
    maxima = strided.max(axis=1)
    chosen = np.argpartition(-maxima, kept - 1, axis=1)[:, :kept]
    columns = (np.arange(group)[None, :, None] * blocks + chosen[:, None, :]).reshape(n, -1)
    candidates = np.take(keys, columns + np.arange(n)[:, None] * keys.shape[1])
    k = min(k, candidates.shape[1])
    selected = np.argpartition(-candidates, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(candidates, selected, axis=1)
    columns = np.take_along_axis(columns, selected, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(values, order, axis=1)


@without_cycle_collection
def rank(
    index: PaperIndex,
    interests: Sequence[Interest],
    *,
    upvotes: Sequence[int],
    seen_counts: Sequence[int],
    pinned: Sequence[bool],
    first_seen: Sequence[float] | None = None,
    already_sent: tuple[Sequence[int], Sequence[int]] = ((), ()),
    threshold: float = RELEVANCE_THRESHOLD,
    paper_vectors: np.ndarray | None = None,
    topic_vectors: Mapping[str, np.ndarray] | None = None,
    semantic_weight: float = SEMANTIC_WEIGHT,
) -> Picks:
    """For each interest, its papers best first: pinned matches, then relevance lifted a little by
    trending; nothing below the threshold, out of the window, excluded or already sent
    (already_sent: parallel sequences of interest and paper positions).

    With paper_vectors (papers × dimensions, unit rows; a zero row: not embedded) and
    topic_vectors (a topic line's unit embedding, by line), each line's cosine with each paper
    adds to its relevance (digest.matching.semantic_blend); without them, or with a weight of
    0, the ranking is on words alone."""
    n, n_papers = len(interests), len(index.titles)
    topics, slots = _topic_slots(interests)
    empty = np.zeros(0, dtype=np.int64)
    picks = Picks(topics, np.zeros(n, dtype=np.int64), empty, empty, np.zeros(0))
    if not n or not n_papers or not topics:
        return picks
    profiles = Profiles.of(index, [i.profile for i in interests])
    if profiles is not None:
        picks.liked_titles = profiles.liked_titles
    # Every distinct topic line is scored once against every paper; row -1 is an empty line.
    relevance = sparse.vstack(
        [
            index.relevance(topics, threshold=threshold),
            sparse.csr_matrix((1, n_papers), dtype=np.float32),
        ],
        format="csr",
    )
    close_part = None
    if paper_vectors is not None and topic_vectors and semantic_weight > 0:
        relevance, close_part = semantic_relevance(
            relevance, topics, paper_vectors, topic_vectors, weight=semantic_weight
        )
    lift = (1 + TREND_WEIGHT * trend(np.asarray(upvotes), np.asarray(seen_counts))).astype(
        np.float32
    )
    pin = np.flatnonzero(np.asarray(pinned, dtype=bool))
    times = np.asarray(first_seen if first_seen is not None else np.zeros(n_papers))
    since = np.asarray([i.since for i in interests], dtype=np.float64)
    limits = np.asarray([i.limit for i in interests], dtype=np.int64)
    exclusions = {
        e: k for k, e in enumerate(dict.fromkeys(e for i in interests for e in i.exclusions))
    }
    excluded = sparse.csr_matrix((n, n_papers), dtype=np.float32)
    if exclusions:
        owners = [(row, exclusions[e]) for row, i in enumerate(interests) for e in i.exclusions]
        excluded = (
            _pairs_matrix(*zip(*owners, strict=True), shape=(n, len(exclusions)))
            @ index.mentions(list(exclusions))
        ).tocsr()
    sent = _pairs_matrix(*already_sent, shape=(n, n_papers))

    day = _Day(relevance, slots, lift, pin, times, since, limits, excluded, sent, profiles)
    blocks = [
        _pick_block(day, a, min(a + SUBSCRIBER_CHUNK, n)) for a in range(0, n, SUBSCRIBER_CHUNK)
    ]
    picks.counts = np.concatenate([block.counts for block in blocks])
    rows = np.concatenate([block.rows for block in blocks])
    if len(rows):
        picks.papers = np.concatenate([block.papers for block in blocks])
        picks.lines = _best_lines(relevance, slots, rows, picks.papers)
        picks.scores = np.round(np.concatenate([b.scores for b in blocks]).astype(np.float64), 4)
        picks.liked = np.full(len(rows), -1, dtype=np.int64)
        said = np.flatnonzero(np.concatenate([block.said for block in blocks]))
        if profiles is not None and len(said):
            picks.liked[said] = profiles.liked_like(rows[said], picks.papers[said])
        if close_part is not None:
            picks.close = _decided_by_meaning(relevance, close_part, picks.lines, picks.papers)
    return picks


@dataclass
class _Day:
    """What every block of interests is ranked with."""

    relevance: sparse.csr_matrix  # distinct topic lines × papers; row -1 is an empty line
    slots: np.ndarray  # each interest's lines (_topic_slots)
    lift: np.ndarray
    pin: np.ndarray
    times: np.ndarray
    since: np.ndarray
    limits: np.ndarray
    excluded: sparse.csr_matrix
    sent: sparse.csr_matrix
    profiles: Profiles | None


@dataclass
class _Block:
    """A block of interests' picks: each interest's count, then (interest, paper) pairs."""

    counts: np.ndarray
    rows: np.ndarray
    papers: np.ndarray
    scores: np.ndarray
    said: np.ndarray  # whether the profile made enough of the score to name a paper it is like


def _pick_block(day: _Day, a: int, b: int) -> _Block:
    n_papers = day.relevance.shape[1]
    best = _line_best(day.relevance, day.slots[a:b])
    part = day.profiles.score(best, a, b) if day.profiles is not None else None
    # Interests whose window starts after the oldest paper.
    late = np.flatnonzero(day.since[a:b] > day.times.min())
    if len(late):
        best[late] *= day.times[None, :] >= day.since[a + late, None]
    _zero_pairs(best, day.excluded[a:b])
    _zero_pairs(best, day.sent[a:b])
    keys = best * day.lift[None, :]
    keys[:, day.pin] += PIN_BONUS * (best[:, day.pin] > 0)
    k = int(min(day.limits[a:b].max(), n_papers))
    if k <= 0:
        empty = np.zeros(0, dtype=np.int64)
        nothing = np.zeros(0, dtype=bool)
        return _Block(np.zeros(b - a, dtype=np.int64), empty, empty, np.zeros(0), nothing)
    top, top_keys = top_k(keys, k)
    valid = (top_keys > 0) & (np.arange(top.shape[1])[None, :] < day.limits[a:b, None])
    rows, _ = np.nonzero(valid)  # row-major: each interest's picks stay best first
    picked = top[valid]
    scores = best[rows, picked]
    said = part.explains(rows, picked, scores) if part else np.zeros(len(rows), dtype=bool)
    return _Block(valid.sum(axis=1), a + rows, picked, scores * day.lift[picked], said)


def _line_best(relevance: sparse.csr_matrix, slots: np.ndarray) -> np.ndarray:
    """interests × papers: each interest's best relevance over its lines (slots: their rows of
    relevance, -1 for none). Every line's stored entries go at once into one dense block."""
    width = relevance.shape[1]
    best = np.zeros(len(slots) * width, dtype=relevance.dtype)
    rows, columns = np.nonzero(slots >= 0)
    lines = slots[rows, columns]
    sizes = np.diff(relevance.indptr)[lines]
    entries = concatenated_ranges(relevance.indptr[lines], sizes)
    cells = np.repeat(rows * width, sizes) + relevance.indices[entries]
    np.maximum.at(best, cells, relevance.data[entries])
    return best.reshape(len(slots), width)


def _best_lines(
    relevance: sparse.csr_matrix, slots: np.ndarray, rows: np.ndarray, papers: np.ndarray
) -> np.ndarray:
    """The line that matched each (interest, paper) pick best (the first of equals), -1 for a
    pick no line matched (the profile's alone)."""
    top = np.zeros(len(rows), dtype=relevance.dtype)
    found = np.full(len(rows), -1, dtype=np.int64)
    for column in range(slots.shape[1]):
        on = np.flatnonzero(slots[rows, column] >= 0)
        if not len(on):
            continue
        lines = slots[rows[on], column]
        values = np.asarray(relevance[lines, papers[on]]).reshape(-1)
        better = values > top[on]
        top[on[better]] = values[better]
        found[on[better]] = lines[better]
    return found


def _decided_by_meaning(
    relevance: sparse.csr_matrix, meaning: sparse.csr_matrix, lines: np.ndarray, papers: np.ndarray
) -> np.ndarray:
    """Whether the meaning's part of each pick's line relevance is at least half of it."""
    close = np.zeros(len(lines), dtype=bool)
    on_line = np.flatnonzero(lines >= 0)
    if len(on_line):
        total = np.asarray(relevance[lines[on_line], papers[on_line]]).ravel()
        part = np.asarray(meaning[lines[on_line], papers[on_line]]).ravel()
        close[on_line] = (part > 0) & (2 * part >= total)
    return close
