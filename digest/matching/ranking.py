"""Ranking: one sparse product scores every distinct topic line against every paper; each
subscriber keeps the best of their topic lines, then masks (window, already sent, exclusions,
threshold) and a top-k pick the digest. Nothing loops over subscriber × paper pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from digest.matching.allocation import without_cycle_collection
from digest.matching.paper_index import RELEVANCE_THRESHOLD, PaperIndex
from digest.matching.profile import Profile, Vectors, concatenated_ranges, stack

TREND_WEIGHT = 0.15  # trending lifts relevance by at most this fraction
PIN_BONUS = 10.0  # pinned papers that match sort before everything else
SUBSCRIBER_CHUNK = 1024  # subscribers scored together in one dense block
# The reader profile (digest.matching.profile): its cosine with a paper, times PROFILE_WEIGHT,
# adds to the topics' relevance (a negative one takes away); a paper no topic matches is sent on
# the profile alone from a cosine of PROFILE_FLOOR. A paper this close to one the reader rated
# down (cosine NEAR_DUPLICATE or more) keeps only (1 - cosine) of its score.
PROFILE_WEIGHT = 4.0
PROFILE_FLOOR = 0.1
NEAR_DUPLICATE = 0.6
PROFILE_SHARE_EXPLAINED = 0.25  # "like X, which you rated up" from this share of the score


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


@dataclass
class _Remembered:
    """The papers the profiles remember (rated up, or rated down), each distinct one once: a paper
    many readers rated is compared with the day's papers once. Interest i remembers the rows
    ids[starts[i]:starts[i + 1]] of `matrix`, latest first."""

    matrix: sparse.csr_matrix  # distinct papers × features
    ids: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(
        cls, rows: Sequence[Vectors | None], columns: tuple[np.ndarray, np.ndarray], width: int
    ) -> _Remembered:
        counts = [len(vectors) if vectors is not None else 0 for vectors in rows]
        every = Vectors.concatenate([vectors for vectors in rows if vectors is not None])
        distinct, ids = every.distinct()
        matrix, _ = stack([distinct], columns, width)
        return cls(matrix, ids, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def owned(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(the owner of each remembered row of interests a:b, counted from a; the rows' ids)."""
        counts = np.diff(self.starts[a : b + 1])
        return np.repeat(np.arange(b - a), counts), self.ids[self.starts[a] : self.starts[b]]


def _near_duplicates(matrix: sparse.csr_matrix, papers_t: sparse.csr_matrix) -> sparse.csr_matrix:
    """rows × papers: the cosine of each pair from NEAR_DUPLICATE up, nothing below."""
    blocks = [sparse.csr_matrix((0, papers_t.shape[1]), dtype=np.float32)]
    for a in range(0, matrix.shape[0], SUBSCRIBER_CHUNK * 4):
        cosines = (matrix[a : a + SUBSCRIBER_CHUNK * 4] @ papers_t).tocsr()
        cosines.data[cosines.data < NEAR_DUPLICATE] = 0
        cosines.eliminate_zeros()
        blocks.append(cosines)
    return sparse.vstack(blocks, format="csr")


@dataclass
class _Profiles:
    """The interests' profiles over the index's words: centroids (one row per interest), and the
    papers rated up and down they remember."""

    papers_t: sparse.csr_matrix  # features × papers, unit paper vectors
    centroids: sparse.csr_matrix
    liked: _Remembered
    disliked: _Remembered
    near: sparse.csr_matrix  # distinct papers rated down × the day's papers close to them
    liked_titles: list[str]

    @classmethod
    def of(cls, index: PaperIndex, interests: Sequence[Interest]) -> _Profiles | None:
        profiles = [i.profile for i in interests]
        if not any(profiles):
            return None
        columns, width = index.profile_columns(), len(index.vocabulary)
        no_row = Vectors(offsets=np.zeros(2, dtype=np.int64))  # one empty row: no profile
        centroids, _ = stack([p.weights if p else no_row for p in profiles], columns, width)
        liked = _Remembered.of([p.liked if p else None for p in profiles], columns, width)
        disliked = _Remembered.of([p.disliked if p else None for p in profiles], columns, width)
        papers_t = index.profile_papers().T.tocsr()
        titles = [t for p in profiles if p for t in p.liked_titles]
        return cls(
            papers_t,
            centroids,
            liked,
            disliked,
            _near_duplicates(disliked.matrix, papers_t),
            titles,
        )

    def score(self, best: np.ndarray, a: int, b: int) -> np.ndarray | None:
        """The profile's part of each score of the block of interests a:b (None: nobody in it
        has a profile); `best` (their topic relevance) becomes the blended score, near
        duplicates of papers rated down sunk. Only the rows of readers with a profile are
        touched."""
        part = None
        centroids = self.centroids[a:b]
        rows = np.flatnonzero(np.diff(centroids.indptr))
        if len(rows):
            similarity = (centroids[rows] @ self.papers_t).toarray()
            part = np.zeros_like(best)
            part[rows] = PROFILE_WEIGHT * similarity
            mine = best[rows]
            eligible = (mine > 0) | (similarity >= PROFILE_FLOOR)
            best[rows] = np.where(eligible, np.maximum(mine + part[rows], 0), 0)
        owners, ids = self.disliked.owned(a, b)
        sizes = np.diff(self.near.indptr)[ids]
        if sizes.any():
            entries = concatenated_ranges(self.near.indptr[ids], sizes)
            factor = np.ones_like(best)
            where = (np.repeat(owners, sizes), self.near.indices[entries])
            np.minimum.at(factor, where, 1 - self.near.data[entries])
            best *= factor
        return part

    def liked_like(self, rows: np.ndarray, papers: np.ndarray, a: int) -> np.ndarray:
        """For each (interest a + row, paper) pair, the remembered paper rated up most like it
        (an index into liked_titles; the latest of equals), -1 when none is alike at all."""
        found = np.full(len(rows), -1, dtype=np.int64)
        starts = self.liked.starts[a + rows]
        sizes = self.liked.starts[a + rows + 1] - starts
        has = np.flatnonzero(sizes)
        if not len(has):
            return found
        sizes, starts = sizes[has], starts[has]
        remembered = concatenated_ranges(starts, sizes)  # positions in liked_titles
        ids, id_column = np.unique(self.liked.ids[remembered], return_inverse=True)
        distinct, paper_column = np.unique(papers[has], return_inverse=True)
        block = (self.liked.matrix[ids] @ self.papers_t[:, distinct]).toarray()
        cosines = block[id_column.reshape(-1), np.repeat(paper_column.reshape(-1), sizes)]
        heads = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        best = np.maximum.reduceat(cosines, heads)
        at_best = np.where(cosines == np.repeat(best, sizes), np.arange(len(cosines)), len(cosines))
        first_best = np.minimum.reduceat(at_best, heads)
        found[has] = np.where(best > 0, remembered[first_best], -1)
        return found


def _topic_slots(interests: Sequence[Interest]) -> tuple[list[str], np.ndarray]:
    """(distinct topic lines, interests × max lines array of their indices, -1 padded)."""
    ids: dict[str, int] = {}
    per_interest = [[ids.setdefault(t, len(ids)) for t in i.topics] for i in interests]
    width = max((len(lines) for lines in per_interest), default=0) or 1
    slots = np.full((len(interests), width), -1, dtype=np.int64)
    counts = np.fromiter((len(lines) for lines in per_interest), dtype=np.int64)
    rows = np.repeat(np.arange(len(interests)), counts)
    columns = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    slots[rows, columns] = [t for lines in per_interest for t in lines]
    return list(ids), slots


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
) -> Picks:
    """For each interest, its papers best first: pinned matches, then relevance lifted a little by
    trending; nothing below the threshold, out of the window, excluded or already sent
    (already_sent: parallel sequences of interest and paper positions)."""
    n, n_papers = len(interests), len(index.titles)
    topics, slots = _topic_slots(interests)
    empty = np.zeros(0, dtype=np.int64)
    picks = Picks(topics, np.zeros(n, dtype=np.int64), empty, empty, np.zeros(0))
    if not n or not n_papers or not topics:
        return picks
    profiles = _Profiles.of(index, interests)
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

    counts, papers, lines, scores, liked = [], [], [], [], []
    width = slots.shape[1]
    for a in range(0, n, SUBSCRIBER_CHUNK):
        b = min(a + SUBSCRIBER_CHUNK, n)
        # Best of each interest's topic lines, one slot (first lines, second lines...) at a time.
        best = relevance[slots[a:b, 0]].toarray()
        for j in range(1, width):
            if (slots[a:b, j] < 0).all():
                break
            # Row -1 (no such line) is empty.
            np.maximum(best, relevance[slots[a:b, j]].toarray(), out=best)
        profile_part = profiles.score(best, a, b) if profiles is not None else None
        if since[a:b].max() > times.min():  # someone's window starts after the oldest paper
            best *= times[None, :] >= since[a:b, None]
        _zero_pairs(best, excluded[a:b])
        _zero_pairs(best, sent[a:b])
        keys = best * lift[None, :]
        keys[:, pin] += PIN_BONUS * (best[:, pin] > 0)
        k = int(min(limits[a:b].max(), n_papers))
        if k <= 0:
            counts.append(np.zeros(b - a, dtype=np.int64))
            continue
        top, top_keys = top_k(keys, k)
        valid = (top_keys > 0) & (np.arange(top.shape[1])[None, :] < limits[a:b, None])
        rows, _ = np.nonzero(valid)  # row-major: each interest's picks stay best first
        picked = top[valid]
        counts.append(valid.sum(axis=1))
        if not picked.size:  # sparse fancy indexing with no pairs returns a matrix, not values
            continue
        papers.append(picked)
        # The line that matched best, looked up for the picked papers only.
        line_scores = [
            np.asarray(relevance[slots[a + rows, j], picked]).ravel() for j in range(width)
        ]
        line_scores = np.vstack(line_scores)
        best_line = np.argmax(line_scores, axis=0)
        lines.append(np.where(line_scores.max(axis=0) > 0, slots[a + rows, best_line], -1))
        scores.append(best[rows, picked] * lift[picked])
        like = np.full(len(picked), -1, dtype=np.int64)
        if profile_part is not None:
            share = profile_part[rows, picked]
            said = np.flatnonzero(
                (share > 0) & (share >= PROFILE_SHARE_EXPLAINED * best[rows, picked])
            )
            like[said] = profiles.liked_like(rows[said], picked[said], a)
        liked.append(like)
    picks.counts = np.concatenate(counts)
    if papers:
        picks.papers = np.concatenate(papers)
        picks.lines = np.concatenate(lines)
        picks.scores = np.round(np.concatenate(scores).astype(np.float64), 4)
        picks.liked = np.concatenate(liked)
    return picks
