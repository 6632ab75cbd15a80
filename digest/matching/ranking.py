"""Ranking: one sparse product scores every distinct topic line against every paper; each
subscriber keeps the best of their topic lines, then masks (window, already sent, exclusions,
threshold) and a top-k pick the digest. Nothing loops over subscriber × paper pairs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from digest.matching.allocation import without_cycle_collection
from digest.matching.paper_index import RELEVANCE_THRESHOLD, PaperIndex
from digest.matching.profile import Profile, Vectors, concatenated_ranges, stack
from digest.matching.semantic_blend import SEMANTIC_WEIGHT, semantic_relevance

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
    close: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # meaning decided


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
        counts = [len(vectors.offsets) - 1 if vectors is not None else 0 for vectors in rows]
        every = Vectors.concatenate([vectors for vectors in rows if vectors is not None])
        distinct, ids = every.distinct()
        matrix = stack(distinct, columns, width)
        return cls(matrix, ids, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def owned(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(the owner of each remembered row of interests a:b, counted from a; the rows' ids)."""
        counts = np.diff(self.starts[a : b + 1])
        return np.repeat(np.arange(b - a), counts), self.ids[self.starts[a] : self.starts[b]]


def _padded(titles: Sequence[str], size: int) -> list[str]:
    return [*titles[:size], *[""] * (size - len(titles))]


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
    """The interests' profiles over the index's words: their centroids, and the papers rated up
    and down they remember."""

    papers_t: sparse.csr_matrix  # features × papers, unit paper vectors
    centroids: sparse.csr_matrix  # one row per interest with a profile
    centroid_of: np.ndarray  # each interest's row in centroids, -1: none
    liked: _Remembered
    disliked: _Remembered
    near: sparse.csr_matrix  # distinct papers rated down × the day's papers close to them
    liked_titles: list[str]  # distinct
    title_of: np.ndarray  # each remembered paper rated up's title in liked_titles

    @classmethod
    def of(cls, index: PaperIndex, interests: Sequence[Interest]) -> _Profiles | None:
        profiles = [i.profile for i in interests]
        if not any(profiles):
            return None
        columns, width = index.profile_columns(), len(index.vocabulary)
        owners = [i for i, p in enumerate(profiles) if p and len(p.weights) == 1]
        centroids = stack(
            Vectors.concatenate([profiles[i].weights for i in owners]), columns, width
        )
        centroid_of = np.full(len(profiles), -1, dtype=np.int64)
        centroid_of[owners] = np.arange(len(owners))
        liked = _Remembered.of([p.liked if p else None for p in profiles], columns, width)
        disliked = _Remembered.of([p.disliked if p else None for p in profiles], columns, width)
        papers_t = index.profile_papers().T.tocsr()
        # Titles said once: readers who rated up the same paper share its "like 'X'". One title
        # per remembered row, whatever was stored ("": a paper without one is not named).
        titles: dict[str, int] = {}
        title_of = np.fromiter(
            (
                titles.setdefault(t, len(titles))
                for p in profiles
                if p
                for t in _padded(p.liked_titles, len(p.liked.offsets) - 1)
            ),
            dtype=np.int64,
        )
        return cls(
            papers_t,
            centroids,
            centroid_of,
            liked,
            disliked,
            _near_duplicates(disliked.matrix, papers_t),
            list(titles),
            title_of,
        )

    def score(self, best: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """`best`, the topic relevance of the block of interests a:b, becomes the blended score
        of those with a profile, near duplicates of papers rated down sunk. Returns the
        profile's part of the scores: (each interest's row in it, -1 without a profile; the
        rows). Only the rows of readers with a profile are touched."""
        part_of = np.full(b - a, -1, dtype=np.int64)
        rows = np.flatnonzero(self.centroid_of[a:b] >= 0)
        part_of[rows] = np.arange(len(rows))
        part = np.zeros((0, best.shape[1]), dtype=best.dtype)
        if len(rows):
            similarity = (self.centroids[self.centroid_of[a + rows]] @ self.papers_t).toarray()
            part = PROFILE_WEIGHT * similarity
            mine = best[rows]
            eligible = (mine > 0) | (similarity >= PROFILE_FLOOR)
            best[rows] = np.where(eligible, np.maximum(mine + part, 0), 0)
        owners, ids = self.disliked.owned(a, b)
        sizes = np.diff(self.near.indptr)[ids]
        if sizes.any():
            entries = concatenated_ranges(self.near.indptr[ids], sizes)
            cells = np.repeat(owners, sizes) * best.shape[1] + self.near.indices[entries]
            order = np.argsort(cells, kind="stable")
            cells, keep = cells[order], 1 - self.near.data[entries][order]
            heads = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
            # Close to several papers rated down: the closest decides.
            sunk_rows, sunk_papers = np.divmod(cells[heads], best.shape[1])
            best[sunk_rows, sunk_papers] *= np.minimum.reduceat(keep, heads)
        return part_of, part

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
        remembered = concatenated_ranges(starts, sizes)
        ids, id_column = np.unique(self.liked.ids[remembered], return_inverse=True)
        distinct, paper_column = np.unique(papers[has], return_inverse=True)
        block = (self.liked.matrix[ids] @ self.papers_t[:, distinct]).toarray()
        cosines = block[id_column.reshape(-1), np.repeat(paper_column.reshape(-1), sizes)]
        heads = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        best = np.maximum.reduceat(cosines, heads)
        at_best = np.where(cosines == np.repeat(best, sizes), np.arange(len(cosines)), len(cosines))
        first_best = np.minimum.reduceat(at_best, heads)
        found[has] = np.where(best > 0, self.title_of[remembered[first_best]], -1)
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

    counts, papers, lines, scores, liked = [], [], [], [], []
    for a in range(0, n, SUBSCRIBER_CHUNK):
        b = min(a + SUBSCRIBER_CHUNK, n)
        # Each interest's relevance by its first lines, second lines... (row -1, no such line,
        # is empty), and the best of them.
        used = int((slots[a:b] >= 0).sum(axis=1).max(initial=1))
        by_line = [relevance[slots[a:b, j]].toarray() for j in range(used)]
        best = np.maximum(by_line[0], by_line[1]) if used > 1 else by_line[0].copy()
        for more in by_line[2:]:
            np.maximum(best, more, out=best)
        profile_part = profiles.score(best, a, b) if profiles is not None else None
        # Interests whose window starts after the oldest paper.
        late = np.flatnonzero(since[a:b] > times.min())
        if len(late):
            best[late] *= times[None, :] >= since[a + late, None]
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
        # The line that matched best, for the picked papers only.
        line_scores = np.vstack([line[rows, picked] for line in by_line])
        best_line = np.argmax(line_scores, axis=0)
        lines.append(np.where(line_scores.max(axis=0) > 0, slots[a + rows, best_line], -1))
        scores.append(best[rows, picked] * lift[picked])
        like = np.full(len(picked), -1, dtype=np.int64)
        if profile_part is not None:
            part_of, part = profile_part
            mine = part_of[rows]
            share = np.where(mine >= 0, part[np.maximum(mine, 0), picked], 0)
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
        if close_part is not None:
            picks.close = _decided_by_meaning(relevance, close_part, picks.lines, picks.papers)
    return picks


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
