"""The reader profile: what a reader's ratings taught, and how it scores papers.

A rated paper is a vector of its most telling words (saturated count × idf, unit length). The
profile is Rocchio's: the mean of the papers rated up minus ROCCHIO_NEGATIVE × the mean of the
papers rated down, trimmed to its PROFILE_WORDS heaviest words. It also keeps the vectors of the
latest papers rated up (to say which one a pick is like) and rated down (to sink their near
duplicates). Words are stored as 64-bit hashes of their stems, so a profile learned once maps onto
any day's paper index with one vectorized lookup, whatever that index's vocabulary.

Why Rocchio (bench/ranking_quality.py --learners, residual-collection nDCG@10 all / tuning /
held-out half): Rocchio 0.532 / 0.502 / 0.565; a linear model per reader on the papers they rated
(ridge, logistic or L2-SVM, best settings) 0.459 / 0.470 / 0.447; arxiv-sanity-lite's SVM, rated
up against the rest of the collection, 0.532 / 0.514 / 0.551 at its smallest C, where it tends to
a difference of centroids. Rocchio equals the best overall, and learning it reads only the
reader's own rated papers, not the whole day's collection, so a rating's task costs little.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import sparse

from digest.matching.text import STEM, TITLE_WEIGHT, analyze

PAPER_WORDS = 40  # a rated paper offers its most telling words
# 150 -> 60 words: residual-collection nDCG@10 on the tuning half 0.495 -> 0.502 (40: 0.497, 50:
# 0.487, 80: 0.489, 100: 0.482), held-out 0.570 -> 0.565; and the daily product costs a third.
PROFILE_WORDS = 60
EXPLAIN_WORDS = 12  # words kept of each remembered paper
REMEMBERED_LIKED = 10  # the latest papers rated up, to say which one a pick is like
REMEMBERED_DISLIKED = 10  # the latest papers rated down, to sink their near duplicates
ROCCHIO_NEGATIVE = 0.25
SATURATION = 1.2


@dataclass(frozen=True)
class RatedPaper:
    title: str
    abstract: str
    value: int  # +1 more like this, -1 less like this


@dataclass
class Vectors:
    """Sparse unit vectors over hashed words: row i holds hashes[offsets[i]:offsets[i + 1]]."""

    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @classmethod
    def of(cls, rows: Sequence[Mapping[int, float]]) -> Vectors:
        lengths = [len(row) for row in rows]
        return cls(
            np.fromiter((h for row in rows for h in row), dtype=np.uint64, count=sum(lengths)),
            np.fromiter((v for row in rows for v in row.values()), np.float32, sum(lengths)),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def concatenate(cls, parts: Sequence[Vectors]) -> Vectors:
        """Every row of every part, in order."""
        parts = [part for part in parts if len(part.offsets) > 1]
        if not parts:
            return cls()
        # Each part's offsets start at 0: their concatenation's steps are the row lengths, but
        # for the step down from one part's last offset to the next one's 0.
        offsets = np.concatenate([part.offsets for part in parts])
        ends = np.cumsum([len(part.offsets) for part in parts])[:-1]
        lengths = np.delete(np.diff(offsets), ends - 1)
        return cls(
            np.concatenate([part.hashes for part in parts]),
            np.concatenate([part.values for part in parts]),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )

    def rows(self, selected: np.ndarray) -> Vectors:
        """The selected rows, in the order given."""
        lengths = np.diff(self.offsets)[selected]
        entries = concatenated_ranges(self.offsets[selected], lengths)
        return Vectors(
            self.hashes[entries],
            self.values[entries],
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )

    def distinct(self) -> tuple[Vectors, np.ndarray]:
        """(the distinct rows, the position of each row among them).

        Rows are grouped by their length and first words, and compared in full with their
        group's first row; rows unlike it are grouped again among themselves."""
        lengths = np.diff(self.offsets)
        key = _mixed(lengths.astype(np.uint64))
        if len(self.hashes):
            last = len(self.hashes) - 1
            head = np.minimum(self.offsets[:-1], last)
            second = np.minimum(self.offsets[:-1] + 1, last)
            bits = self.values[head].astype(np.float32).view(np.uint32).astype(np.uint64)
            key ^= np.where(lengths > 0, _mixed(self.hashes[head] ^ _mixed(bits)), 0)
            key ^= np.where(lengths > 1, _mixed(_mixed(self.hashes[second])), 0)
        model = np.arange(len(lengths))
        pending = model.copy()
        while len(pending):
            _, first, group = np.unique(key[pending], return_index=True, return_inverse=True)
            model[pending] = pending[first[group.reshape(-1)]]
            pending = pending[model[pending] != pending]
            pending = pending[~self._same_rows(pending, model[pending])]
        kept = model == np.arange(len(lengths))
        position = np.cumsum(kept) - 1
        return self.rows(np.flatnonzero(kept)), position[model]

    def _same_rows(self, rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Whether each of `rows` holds the same words and weights, in the same order, as the
        matching one of `others`."""
        lengths = np.diff(self.offsets)
        same = lengths[rows] == lengths[others]
        sizes = np.where(same, lengths[rows], 0)
        entries = concatenated_ranges(self.offsets[rows], sizes)
        partners = concatenated_ranges(self.offsets[others], sizes)
        differs = (self.hashes[entries] != self.hashes[partners]) | (
            self.values[entries] != self.values[partners]
        )
        owner = np.repeat(np.arange(len(rows)), sizes)
        return same & (np.bincount(owner[differs], minlength=len(rows)) == 0)


@dataclass
class Profile:
    weights: Vectors  # one row: the Rocchio centroid
    liked: Vectors  # the latest papers rated up
    liked_titles: list[str]
    disliked: Vectors  # the latest papers rated down

    def to_bytes(self) -> bytes:
        parts = []
        for vectors in (self.weights, self.liked, self.disliked):
            parts += [vectors.hashes, vectors.values, vectors.offsets]
        header = np.asarray([len(part) for part in parts], dtype=np.int64)
        return header.tobytes() + b"".join(part.tobytes() for part in parts)

    @classmethod
    def from_bytes(cls, data: bytes, liked_titles: Sequence[str]) -> Profile:
        sizes = np.frombuffer(data, dtype=np.int64, count=9)
        position, parts = sizes.nbytes, []
        for size, dtype in zip(sizes, [np.uint64, np.float32, np.int64] * 3, strict=True):
            parts.append(np.frombuffer(data, dtype=dtype, count=int(size), offset=position))
            position += int(size) * np.dtype(dtype).itemsize
        weights, liked, disliked = (Vectors(*parts[i : i + 3]) for i in (0, 3, 6))
        return cls(weights, liked, list(liked_titles), disliked)


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """starts[0], starts[0] + 1, ... (lengths[0] of them), then the same from starts[1]..."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths) + np.arange(
        int(ends[-1]) if len(ends) else 0
    )


def numbered(values: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """(the distinct values in the order they first come, each value's number among them)."""
    values = list(values)
    distinct = list(dict.fromkeys(values))
    number = dict(zip(distinct, range(len(distinct)), strict=True))
    return distinct, np.fromiter(map(number.__getitem__, values), dtype=np.int64, count=len(values))


def _mixed(x: np.ndarray) -> np.ndarray:
    """A 64-bit mix (SplitMix64's finalizer) of each value."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=200_000)
def feature_hash(stem_: str) -> int:
    return int.from_bytes(hashlib.blake2b(stem_.encode(), digest_size=8).digest(), "little")


def paper_vector(
    title: str, abstract: str, idf: Mapping[str, float], *, unseen_idf: float, words: int
) -> dict[str, float]:
    """The paper's `words` most telling stems, saturated count × idf, unit length."""
    counts: Counter = Counter(token[STEM] for token in analyze(abstract))
    for token in analyze(title):
        counts[token[STEM]] += TITLE_WEIGHT
    weights = {s: c / (c + SATURATION) * idf.get(s, unseen_idf) for s, c in counts.items()}
    top = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:words]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return {s: w / norm for s, w in top}


def learn_profile(
    rated: Sequence[RatedPaper], idf: Mapping[str, float], *, unseen_idf: float
) -> Profile:
    """Rocchio over the rated papers (latest first), with the latest ones remembered."""
    vectors = [
        paper_vector(p.title, p.abstract, idf, unseen_idf=unseen_idf, words=PAPER_WORDS)
        for p in rated
    ]
    return profile_of_vectors(vectors, [p.value for p in rated], [p.title for p in rated])


def profile_of_vectors(
    vectors: Sequence[Mapping[str, float]], values: Sequence[int], titles: Sequence[str]
) -> Profile:
    """The profile of rated papers given as their vectors (latest first)."""
    liked = [v for v, value in zip(vectors, values, strict=True) if value > 0]
    disliked = [v for v, value in zip(vectors, values, strict=True) if value < 0]
    centroid: Counter = Counter()
    for group, weight in ((liked, 1.0), (disliked, -ROCCHIO_NEGATIVE)):
        for vector in group:
            for s, w in vector.items():
                centroid[s] += weight * w / len(group)
    top = sorted(centroid.items(), key=lambda item: (-item[1], item[0]))[:PROFILE_WORDS]
    top = [(s, w) for s, w in top if w > 0]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0

    def hashed(vector: Mapping[str, float], size: int) -> dict[int, float]:
        kept = sorted(vector.items(), key=lambda item: -item[1])[:size]
        norm = math.sqrt(sum(w * w for _, w in kept)) or 1.0
        return {feature_hash(s): w / norm for s, w in kept}

    return Profile(
        weights=Vectors.of([{feature_hash(s): w / norm for s, w in top}]),
        liked=Vectors.of([hashed(v, EXPLAIN_WORDS) for v in liked[:REMEMBERED_LIKED]]),
        liked_titles=[t for t, value in zip(titles, values, strict=True) if value > 0][
            :REMEMBERED_LIKED
        ],
        disliked=Vectors.of([hashed(v, EXPLAIN_WORDS) for v in disliked[:REMEMBERED_DISLIKED]]),
    )


def idf_of(documents: Sequence[tuple[str, str]]) -> tuple[dict[str, float], float]:
    """(each stem's idf over the (title, abstract) documents, the idf of an unseen stem)."""
    frequency: Counter = Counter()
    for title, abstract in documents:
        frequency.update({token[STEM] for token in analyze(f"{title}. {abstract}")})
    n = len(documents)
    idf = {s: math.log1p((n - df + 0.5) / (df + 0.5)) for s, df in frequency.items()}
    return idf, math.log1p((n + 0.5) / 0.5)


LOOKUP_BITS = 22


def lookup(hashes_sorted: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The position of each of `hashes` in `hashes_sorted`, -1 where absent. A direct table on
    the hashes' low bits answers nearly all; the few that share a slot go through a search."""
    if not len(hashes_sorted):
        return np.full(len(hashes), -1, dtype=np.int64)
    mask = np.uint64((1 << LOOKUP_BITS) - 1)
    slots = (hashes_sorted & mask).astype(np.int64)
    table = np.full(1 << LOOKUP_BITS, -1, dtype=np.int32)
    table[slots] = np.arange(len(hashes_sorted), dtype=np.int32)
    table[slots[np.bincount(slots, minlength=1 << LOOKUP_BITS)[slots] > 1]] = -2  # crowded
    found = table[(hashes & mask).astype(np.int64)].astype(np.int64)
    hit = np.flatnonzero(found >= 0)
    found[hit[hashes_sorted[found[hit]] != hashes[hit]]] = -1
    crowded = np.flatnonzero(found == -2)
    if len(crowded):
        position = np.searchsorted(hashes_sorted, hashes[crowded])
        position = np.minimum(position, len(hashes_sorted) - 1)
        found[crowded] = np.where(hashes_sorted[position] == hashes[crowded], position, -1)
    return found


def stack(
    vectors: Vectors, columns: tuple[np.ndarray, np.ndarray], width: int
) -> sparse.csr_matrix:
    """The rows as one CSR matrix over the index's columns; unknown words are dropped.

    `columns`: (sorted hashes of the index's features, their column numbers)."""
    hashes_sorted, column_of = columns
    lengths = np.diff(vectors.offsets)
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    found = lookup(hashes_sorted, vectors.hashes)
    known = found >= 0
    per_row = np.bincount(row_of[known], minlength=len(lengths))
    return sparse.csr_matrix(
        (
            vectors.values[known].astype(np.float32),
            column_of[found[known]].astype(np.int32),
            np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64),
        ),
        shape=(len(lengths), width),
    )
