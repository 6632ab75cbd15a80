"""The ranking's fast paths give, to the last bit, what the straightforward dense computation
gives: the best line of each interest, the line that matched each pick, the profile's blend,
and the cosines of remembered papers."""

import numpy as np
import pytest
from scipy import sparse

from digest.matching.profile_ranking import (
    PROFILE_FLOOR,
    PROFILE_WEIGHT,
    Profiles,
    Remembered,
    _pair_products,
)
from digest.matching.ranking import _best_lines, _line_best


def random_relevance(rng: np.random.Generator, lines: int, papers: int) -> sparse.csr_matrix:
    """Lines × papers, sparse, with ties (values from a few levels) and an empty last row."""
    dense = rng.choice([0.0, 0.0, 0.0, 0.1, 0.25, 0.5, 0.7], size=(lines, papers))
    dense = (dense * rng.choice([1.0, 1.0, 0.9], size=dense.shape)).astype(np.float32)
    dense[-1] = 0
    return sparse.csr_matrix(dense)


def random_slots(rng: np.random.Generator, interests: int, lines: int) -> np.ndarray:
    """interests × 4: each interest's lines (some shared, some repeated), -1 padded."""
    slots = np.full((interests, 4), -1, dtype=np.int64)
    for row, count in enumerate(rng.integers(0, 5, size=interests)):
        slots[row, :count] = rng.integers(0, lines - 1, size=count)
    return slots


@pytest.mark.parametrize("seed", range(5))
def test_best_line_and_matching_line_equal_the_dense_maximum(seed):
    rng = np.random.default_rng(seed)
    relevance = random_relevance(rng, 30, 40)
    slots = random_slots(rng, 50, 30)
    by_line = [relevance[slots[:, j]].toarray() for j in range(slots.shape[1])]

    best = _line_best(relevance, slots)

    assert np.array_equal(best, np.max(by_line, axis=0))
    rows, papers = np.nonzero(rng.random(best.shape) < 0.3)
    line_scores = np.vstack([line[rows, papers] for line in by_line])
    expected = np.where(
        line_scores.max(axis=0) > 0, slots[rows, np.argmax(line_scores, axis=0)], -1
    )
    assert np.array_equal(_best_lines(relevance, slots, rows, papers), expected)


def random_unit_rows(rng: np.random.Generator, rows: int, width: int) -> sparse.csr_matrix:
    dense = rng.random((rows, width)) * (rng.random((rows, width)) < 0.2)
    norms = np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-9)
    # Entries out of column order, as profiles store them (heaviest word first).
    matrix = sparse.csr_matrix((dense / norms).astype(np.float32))
    rows_of = np.repeat(np.arange(rows), np.diff(matrix.indptr))
    order = np.lexsort((-matrix.data, rows_of))
    return sparse.csr_matrix(
        (matrix.data[order], matrix.indices[order], matrix.indptr), shape=matrix.shape
    )


@pytest.mark.parametrize("seed", range(5))
def test_profile_blend_equals_the_dense_blend(seed):
    rng = np.random.default_rng(seed)
    interests, papers, words = 40, 30, 25
    centroid_of = np.where(rng.random(interests) < 0.5, 0, -1)
    centroid_of[centroid_of == 0] = np.arange((centroid_of == 0).sum())
    centroids = random_unit_rows(rng, int((centroid_of >= 0).sum()), words)
    papers_t = random_unit_rows(rng, papers, words).T.tocsr()
    nothing = Remembered(
        sparse.csr_matrix((0, words), dtype=np.float32),
        np.zeros(0, dtype=np.int64),
        np.zeros(interests + 1, dtype=np.int64),
    )
    empty = sparse.csr_matrix((0, papers), dtype=np.float32)
    profiles = Profiles(papers_t, centroids, centroid_of, nothing, nothing, empty, [], np.zeros(0))
    best = random_relevance(rng, interests, papers).toarray()
    expected = best.copy()
    rows = np.flatnonzero(centroid_of >= 0)
    similarity = (centroids[centroid_of[rows]] @ papers_t).toarray()
    mine = expected[rows]
    eligible = (mine > 0) | (similarity >= PROFILE_FLOOR)
    expected[rows] = np.where(eligible, np.maximum(mine + PROFILE_WEIGHT * similarity, 0), 0)

    part = profiles.score(best, 0, interests)

    assert np.array_equal(best, expected)
    picked_rows, picked = np.nonzero(best > 0)
    share = np.zeros(len(picked), dtype=np.float32)
    has = part.row_of[picked_rows] >= 0
    share[has] = PROFILE_WEIGHT * similarity[part.row_of[picked_rows[has]], picked[has]]
    said = (share > 0) & (share >= 0.25 * best[picked_rows, picked])
    assert np.array_equal(part.explains(picked_rows, picked, best[picked_rows, picked]), said)


@pytest.mark.parametrize("cells", [1, 45, 4_000_000])
def test_pair_products_equal_the_whole_product(monkeypatch, cells):
    monkeypatch.setattr("digest.matching.profile_ranking.PAIR_CELLS", cells)
    rng = np.random.default_rng(cells)
    matrix = random_unit_rows(rng, 12, 20)
    other = random_unit_rows(rng, 15, 20).T.tocsr()
    rows, columns = rng.integers(0, 12, size=200), rng.integers(0, 15, size=200)

    values = _pair_products(matrix, rows, other, columns)

    assert np.array_equal(values, (matrix @ other).toarray()[rows, columns])
