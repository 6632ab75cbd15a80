"""The readers' profiles in a ranking pass: their centroids over the day's words, and the papers
they remember (rated up, to say which one a pick is like; rated down, to sink its near duplicates).

A profile's cosine with a paper, times PROFILE_WEIGHT, adds to the topics' relevance (a negative
one takes away); a paper no topic matches is sent on the profile alone from a cosine of
PROFILE_FLOOR. A paper this close to one the reader rated down (cosine NEAR_DUPLICATE or more)
keeps only (1 - cosine) of its score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from digest.matching.paper_index import PaperIndex
from digest.matching.profile import Profile, Vectors, concatenated_ranges, numbered, stack

PROFILE_WEIGHT = 4.0
PROFILE_FLOOR = 0.1
NEAR_DUPLICATE = 0.6
PROFILE_SHARE_EXPLAINED = 0.25  # "like X, which you rated up" from this share of the score
REMEMBERED_CHUNK = 4096  # remembered papers compared with the day's papers together
PAIR_CELLS = 4_000_000  # cells of one dense block of remembered papers × the day's papers


@dataclass
class Remembered:
    """The papers the profiles remember (rated up, or rated down), each distinct one once: a paper
    many readers rated is compared with the day's papers once. Interest i remembers the rows
    ids[starts[i]:starts[i + 1]] of `matrix`, latest first."""

    matrix: sparse.csr_matrix  # distinct papers × features
    ids: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(
        cls, rows: Sequence[Vectors | None], columns: tuple[np.ndarray, np.ndarray], width: int
    ) -> Remembered:
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
    for a in range(0, matrix.shape[0], REMEMBERED_CHUNK):
        cosines = (matrix[a : a + REMEMBERED_CHUNK] @ papers_t).tocsr()
        cosines.data[cosines.data < NEAR_DUPLICATE] = 0
        cosines.eliminate_zeros()
        blocks.append(cosines)
    return sparse.vstack(blocks, format="csr")


@dataclass
class ProfilePart:
    """The profiles' part of a block of interests' scores: each interest's row in `cosines`
    (-1: no profile), and those rows' cosines with the papers."""

    row_of: np.ndarray
    cosines: sparse.csr_matrix

    def explains(self, rows: np.ndarray, papers: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Whether the profile made PROFILE_SHARE_EXPLAINED or more of each (row, paper)'s
        score (`scores`, before trending)."""
        mine = self.row_of[rows]
        has = np.flatnonzero(mine >= 0)
        share = np.zeros(len(rows), dtype=np.float32)
        if len(has):
            # Dense: a few picks per row of cosines, each a scan of its row in the sparse form.
            share[has] = PROFILE_WEIGHT * self.cosines.toarray()[mine[has], papers[has]]
        return (share > 0) & (share >= PROFILE_SHARE_EXPLAINED * scores)


@dataclass
class Profiles:
    """The interests' profiles over the index's words: their centroids, and the papers rated up
    and down they remember."""

    papers_t: sparse.csr_matrix  # features × papers, unit paper vectors
    centroids: sparse.csr_matrix  # one row per interest with a profile
    centroid_of: np.ndarray  # each interest's row in centroids, -1: none
    liked: Remembered
    disliked: Remembered
    near: sparse.csr_matrix  # distinct papers rated down × the day's papers close to them
    liked_titles: list[str]  # distinct
    title_of: np.ndarray  # each remembered paper rated up's title in liked_titles

    @classmethod
    def of(cls, index: PaperIndex, profiles: Sequence[Profile | None]) -> Profiles | None:
        """The profiles (one per interest, None: none) over the index's words."""
        if not any(profiles):
            return None
        columns, width = index.profile_columns(), len(index.vocabulary)
        owners = [i for i, p in enumerate(profiles) if p and len(p.weights) == 1]
        centroids = stack(
            Vectors.concatenate([profiles[i].weights for i in owners]), columns, width
        )
        centroid_of = np.full(len(profiles), -1, dtype=np.int64)
        centroid_of[owners] = np.arange(len(owners))
        liked = Remembered.of([p.liked if p else None for p in profiles], columns, width)
        disliked = Remembered.of([p.disliked if p else None for p in profiles], columns, width)
        papers_t = index.profile_papers().T.tocsr()
        # Titles said once: readers who rated up the same paper share its "like 'X'". One title
        # per remembered row, whatever was stored ("": a paper without one is not named).
        titles, title_of = numbered(
            t for p in profiles if p for t in _padded(p.liked_titles, len(p.liked.offsets) - 1)
        )
        return cls(
            papers_t,
            centroids,
            centroid_of,
            liked,
            disliked,
            _near_duplicates(disliked.matrix, papers_t),
            titles,
            title_of,
        )

    def score(self, best: np.ndarray, a: int, b: int) -> ProfilePart:
        """`best`, the topic relevance of the block of interests a:b, becomes the blended score
        of those with a profile, near duplicates of papers rated down sunk. Only the papers a
        profile has a cosine with, or rated down papers are close to, are touched."""
        row_of = np.full(b - a, -1, dtype=np.int64)
        rows = np.flatnonzero(self.centroid_of[a:b] >= 0)
        row_of[rows] = np.arange(len(rows))
        # The block's centroids are consecutive rows: interests are numbered in the same order.
        first = int(self.centroid_of[a + rows[0]]) if len(rows) else 0
        cosines = (self.centroids[first : first + len(rows)] @ self.papers_t).tocsr()
        if cosines.nnz:
            cells = np.repeat(rows * best.shape[1], np.diff(cosines.indptr)) + cosines.indices
            mine = best.take(cells)
            # A paper no topic matched comes in on the profile alone from PROFILE_FLOOR.
            eligible = np.flatnonzero((mine > 0) | (cosines.data >= PROFILE_FLOOR))
            blended = mine[eligible] + PROFILE_WEIGHT * cosines.data[eligible]
            np.put(best, cells[eligible], np.maximum(blended, 0))
        self._sink_near_duplicates(best, a, b)
        return ProfilePart(row_of, cosines)

    def _sink_near_duplicates(self, best: np.ndarray, a: int, b: int) -> None:
        owners, ids = self.disliked.owned(a, b)
        sizes = np.diff(self.near.indptr)[ids]
        if not sizes.any():
            return
        entries = concatenated_ranges(self.near.indptr[ids], sizes)
        cells = np.repeat(owners, sizes) * best.shape[1] + self.near.indices[entries]
        order = np.argsort(cells, kind="stable")
        cells, keep = cells[order], 1 - self.near.data[entries][order]
        heads = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
        # Close to several papers rated down: the closest decides.
        sunk_rows, sunk_papers = np.divmod(cells[heads], best.shape[1])
        best[sunk_rows, sunk_papers] *= np.minimum.reduceat(keep, heads)

    def liked_like(self, rows: np.ndarray, papers: np.ndarray) -> np.ndarray:
        """For each (interest, paper) pair, the remembered paper rated up most like it (an index
        into liked_titles; the latest of equals), -1 when none is alike at all."""
        found = np.full(len(rows), -1, dtype=np.int64)
        starts = self.liked.starts[rows]
        sizes = self.liked.starts[rows + 1] - starts
        has = np.flatnonzero(sizes)
        if not len(has):
            return found
        sizes, starts = sizes[has], starts[has]
        remembered = concatenated_ranges(starts, sizes)
        cosines = _pair_products(
            self.liked.matrix,
            self.liked.ids[remembered],
            self.papers_t,
            np.repeat(papers[has], sizes),
        )
        heads = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        best = np.maximum.reduceat(cosines, heads)
        at_best = np.where(cosines == np.repeat(best, sizes), np.arange(len(cosines)), len(cosines))
        first_best = np.minimum.reduceat(at_best, heads)
        found[has] = np.where(best > 0, self.title_of[remembered[first_best]], -1)
        return found


def _pair_products(
    matrix: sparse.csr_matrix, rows: np.ndarray, other: sparse.csr_matrix, columns: np.ndarray
) -> np.ndarray:
    """(matrix @ other)[rows[i], columns[i]] for each i, the product taken for as many rows of
    `matrix` at a time as make PAIR_CELLS cells."""
    values = np.zeros(len(rows), dtype=matrix.dtype)
    step = max(1, PAIR_CELLS // max(other.shape[1], 1))
    chunk_of = rows // step
    for number in np.unique(chunk_of).tolist():
        pairs = np.flatnonzero(chunk_of == number)
        start = number * step
        block = (matrix[start : start + step] @ other).toarray()
        values[pairs] = block[rows[pairs] - start, columns[pairs]]
    return values
