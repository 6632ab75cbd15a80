"""Other ways to learn a reader's profile from their ratings, for the residual-collection test in
bench/ranking_quality.py (--learners). Each one turns the rated papers into a weight per word,
over the same paper vectors the profile uses (digest.matching.profile.paper_vector), and is then
ranked by the very same pass as the shipped Rocchio profile: the weights are trimmed to the
PROFILE_WORDS heaviest (by size, so a linear model keeps its negative words) and made unit length.

- rocchio: the shipped profile (digest.matching.profile.learn_profile).
- ridge, logistic, l2-svm: a linear model per reader, trained on the papers they rated, up
  against down, with balanced class weights and an intercept (ridge: squared loss; logistic:
  log loss; l2-svm: squared hinge, LIBLINEAR's default for a linear SVM).
- l2-svm vs rest: arxiv-sanity-lite's recipe, papers rated up against every other paper of the
  collection (the ones rated down included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit

from digest.matching.profile import (
    PAPER_WORDS,
    Profile,
    RatedPaper,
    Vectors,
    feature_hash,
    learn_profile,
    paper_vector,
)


@dataclass(frozen=True)
class Collection:
    """What a learner may look at: the collection's papers, as the profile sees them."""

    titles: Sequence[str]
    abstracts: Sequence[str]
    idf: Mapping[str, float]
    unseen_idf: float

    def vector(self, title: str, abstract: str) -> dict[str, float]:
        return paper_vector(
            title, abstract, self.idf, unseen_idf=self.unseen_idf, words=PAPER_WORDS
        )


Learner = Callable[[Sequence[RatedPaper], Collection, float], Profile]


def rocchio(rated: Sequence[RatedPaper], collection: Collection, strength: float) -> Profile:
    return learn_profile(rated, collection.idf, unseen_idf=collection.unseen_idf)


def _fit(matrix: sparse.csr_matrix, labels: np.ndarray, loss: str, strength: float) -> np.ndarray:
    """Weights w (and an intercept) minimising ½‖w‖² + C Σ balanced(i) loss(y_i, x_i·w + b),
    with C = `strength`."""
    counts = {label: int((labels == label).sum()) for label in (-1, 1)}
    balance = np.array([len(labels) / (2 * counts[int(y)]) for y in labels])

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        output = matrix @ w + b
        if loss == "squared":
            residual = output - labels
            losses, slope = residual**2, 2 * residual
        else:
            margin = labels * output
            if loss == "logistic":
                losses, slope = np.logaddexp(0, -margin), -expit(-margin) * labels
            else:  # squared hinge
                slack = np.maximum(0.0, 1 - margin)
                losses, slope = slack**2, -2 * slack * labels
        weighted = strength * balance * slope
        value = 0.5 * w @ w + strength * (balance * losses).sum()
        return value, np.concatenate([w + matrix.T @ weighted, [weighted.sum()]])

    start = np.zeros(matrix.shape[1] + 1)
    return minimize(objective, start, jac=True, method="L-BFGS-B").x[:-1]


def _as_profile(weights: Mapping[str, float], shipped: Profile) -> Profile:
    """The shipped profile with its centroid replaced by `weights`, trimmed and unit length."""
    from digest.matching import profile

    top = sorted(weights.items(), key=lambda item: (-abs(item[1]), item[0]))[
        : profile.PROFILE_WORDS
    ]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return replace(shipped, weights=Vectors.of([{feature_hash(s): w / norm for s, w in top if w}]))


def linear(loss: str, *, against_rest: bool = False) -> Learner:
    def learn(rated: Sequence[RatedPaper], collection: Collection, strength: float) -> Profile:
        shipped = rocchio(rated, collection, strength)
        examples = [(collection.vector(p.title, p.abstract), p.value) for p in rated]
        if against_rest:
            liked = {p.title for p in rated if p.value > 0}
            examples = [(v, 1) for v, value in examples if value > 0] + [
                (collection.vector(t, a), -1)
                for t, a in zip(collection.titles, collection.abstracts, strict=True)
                if t not in liked
            ]
        labels = np.array([value for _, value in examples], dtype=float)
        if len(set(labels)) < 2:
            return shipped  # one kind of rating only: nothing to separate, keep Rocchio's
        words = sorted({s for vector, _ in examples for s in vector})
        column = {s: i for i, s in enumerate(words)}
        rows = [(i, column[s], w) for i, (v, _) in enumerate(examples) for s, w in v.items()]
        r, c, w = zip(*rows, strict=True)
        matrix = sparse.csr_matrix((w, (r, c)), shape=(len(examples), len(words)))
        fitted = _fit(matrix, labels, loss, strength)
        return _as_profile(dict(zip(words, fitted, strict=True)), shipped)

    return learn


LEARNERS: dict[str, Learner] = {
    "rocchio": rocchio,
    "ridge": linear("squared"),
    "logistic": linear("logistic"),
    "l2-svm": linear("squared_hinge"),
    "l2-svm vs rest": linear("squared_hinge", against_rest=True),
}
STRENGTHS = {"rocchio": [1.0]} | {
    name: [0.001, 0.01, 0.1, 1.0] for name in LEARNERS if name != "rocchio"
}
