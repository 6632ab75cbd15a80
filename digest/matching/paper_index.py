"""The paper index: papers as sparse matrices over one vocabulary of word stems and of adjacent
stem pairs (so a phrase typed as a topic scores higher in order than as loose words), and the
relevance of topic lines to them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from digest.matching.allocation import without_cycle_collection
from digest.matching.profile import feature_hash
from digest.matching.text import (
    TITLE_WEIGHT,
    Token,
    analyze,
    find_acronyms,
    phrase_count,
    topic_stems,
)

# BM25-style saturation of a term's weighted count in a paper.
K1 = 1.2
B = 0.75
PHRASE_WEIGHT = 1.0  # weight of each adjacent pair of a topic, relative to its words' mean idf
COVERAGE_POWER = 1.0  # soft AND: relevance × (share of the topic's words present) ** power
# A paper is sent only if it holds at least this share of the topic's word weight (idf) and two
# of its words (one for a one-word topic), so a paper sharing only a topic's common words
# ("neural networks" of "spiking neural networks") or its one rare word is not; and its relevance
# (0..1) reaches the floor below, so a lone passing mention is not either.
COVERAGE_THRESHOLD = 0.5
RELEVANCE_THRESHOLD = 0.05
WORD_MARK = 2.0  # > any word's share of a topic (shares sum to 1)
# Pseudo-relevance feedback (as RM3): a topic's best FEEDBACK_PAPERS matches lend it the
# FEEDBACK_WORDS most telling words they share, which then count FEEDBACK_WEIGHT of its score.
# It reorders the papers that pass the threshold on the topic's own words; it never adds one.
FEEDBACK_PAPERS = 10
FEEDBACK_WORDS = 10
FEEDBACK_WEIGHT = 0.5
FEEDBACK_MIN_PAPERS = 2  # a word lent must be used by this many of them
PAPER_WORDS_FOR_FEEDBACK = 40  # a paper offers only its most telling words
TOPIC_CHUNK = 4096  # distinct topic lines scored together


def segment_runs(tokens: Sequence[Token]) -> list[list[str]]:
    """The tokens' stems in runs between punctuation (a phrase never crosses it)."""
    runs: list[list[str]] = []
    last = -1
    for stem_, _, _, segment in tokens:
        if segment != last:
            runs.append([])
            last = segment
        runs[-1].append(stem_)
    return runs


def _field_counts(runs: list[list[str]], acronyms: dict[str, tuple[str, ...]]) -> Counter:
    """How often each stem and each adjacent pair of stems occurs; a defined acronym and its long
    form stand for each other."""
    counts = Counter(s for run in runs for s in run)
    counts.update(f"{a} {b}" for run in runs for a, b in zip(run, run[1:], strict=False))
    for acronym, long_form in acronyms.items():
        said_short = counts.get(acronym, 0)
        said_long = sum(phrase_count(run, long_form) for run in runs)
        if said_long:
            counts[acronym] += said_long
        if said_short:
            counts.update(dict.fromkeys(long_form, said_short))
            counts.update(
                {f"{a} {b}": said_short for a, b in zip(long_form, long_form[1:], strict=False)}
            )
    return counts


@dataclass
class PaperIndex:
    """The papers as sparse matrices over the vocabulary of stems and stem pairs."""

    titles: list[str]
    abstracts: list[str]
    vocabulary: dict[str, int] = field(default_factory=dict)
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    saturation: sparse.csr_matrix | None = None  # papers × features, BM25 saturated tf in [0, 1)
    presence: sparse.csr_matrix | None = None  # papers × features, 1 where the feature occurs
    telling: sparse.csr_matrix | None = None  # papers × features, top words by saturation × idf
    telling_presence: sparse.csr_matrix | None = None  # 1 where `telling` has an entry
    acronyms: list[dict[str, tuple[str, ...]]] = field(default_factory=list)
    tokens: list[tuple[list[Token], list[Token]]] = field(default_factory=list)
    # Each paper's title and abstract as explanations read them, filled as they need it.
    positions: dict[int, tuple] = field(default_factory=dict)
    _profile_papers: sparse.csr_matrix | None = None
    _profile_columns: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    @without_cycle_collection
    def build(cls, titles: Sequence[str], abstracts: Sequence[str]) -> PaperIndex:
        index = cls(list(titles), list(abstracts))
        vocabulary = index.vocabulary
        rows, cols, values = [], [], []
        lengths = np.zeros(len(index.titles), dtype=np.float32)
        for row, (title, abstract) in enumerate(zip(index.titles, index.abstracts, strict=True)):
            acronyms = find_acronyms(f"{title}. {abstract}")
            index.acronyms.append(acronyms)
            title_tokens, abstract_tokens = analyze(title), analyze(abstract)
            index.tokens.append((title_tokens, abstract_tokens))
            title_runs, abstract_runs = segment_runs(title_tokens), segment_runs(abstract_tokens)
            counts = _field_counts(abstract_runs, acronyms)
            for key, value in _field_counts(title_runs, acronyms).items():
                counts[key] += TITLE_WEIGHT * value
            lengths[row] = TITLE_WEIGHT * sum(map(len, title_runs)) + sum(map(len, abstract_runs))
            rows.append(np.full(len(counts), row, dtype=np.int32))
            cols.extend(vocabulary.setdefault(key, len(vocabulary)) for key in counts)
            values.extend(counts.values())
        shape = (len(index.titles), len(vocabulary))
        tf = sparse.csr_matrix(
            (
                np.asarray(values, dtype=np.float32),
                (np.concatenate(rows) if rows else [], np.asarray(cols, dtype=np.int32)),
            ),
            shape=shape,
            dtype=np.float32,
        )
        n = max(len(index.titles), 1)
        document_frequency = np.bincount(tf.indices, minlength=shape[1])
        index.idf = np.log1p((n - document_frequency + 0.5) / (document_frequency + 0.5)).astype(
            np.float32
        )
        average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        norm = K1 * (1 - B + B * lengths / average)
        row_of = np.repeat(np.arange(shape[0]), np.diff(tf.indptr))
        saturated = tf.data / (tf.data + norm[row_of])
        index.saturation = sparse.csr_matrix((saturated, tf.indices, tf.indptr), shape=shape)
        index.presence = sparse.csr_matrix(
            (np.ones_like(tf.data), tf.indices, tf.indptr), shape=shape
        )
        is_word = np.fromiter((" " not in key for key in vocabulary), dtype=bool, count=shape[1])
        telling = index.saturation.multiply((index.idf * is_word)[None, :]).tocsr()
        index.telling = keep_row_top(telling, PAPER_WORDS_FOR_FEEDBACK)
        index.telling_presence = index.telling.copy()
        index.telling_presence.data[:] = 1
        return index

    @classmethod
    def of(cls, titles: Sequence[str], abstracts: Sequence[str]) -> PaperIndex:
        """The index of these papers, reused when the same texts were indexed just before: the
        planning rounds of a day, every few minutes, mostly see the same papers. An index is a
        function of the texts alone, and its lazily filled parts are too, so sharing is safe.
        Only the latest is kept, and it is let go before another is built: one in memory."""
        global _latest
        texts = (tuple(titles), tuple(abstracts))
        latest = _latest
        if latest is not None and latest[0] == texts:
            return latest[1]
        del latest
        _latest = None
        index = cls.build(*texts)
        _latest = (texts, index)
        return index

    def term_idf(self, feature: str) -> float:
        column = self.vocabulary.get(feature)
        if column is None:  # unseen: as rare as can be
            n = max(len(self.titles), 1)
            return math.log1p((n + 0.5) / 0.5)
        return float(self.idf[column])

    def topic_matrices(self, topics: Sequence[str]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """(weights, coverage), topics × features. Weights: the topic's words (idf) and adjacent
        pairs (PHRASE_WEIGHT × their words' mean idf), summing to 1 with unseen features included;
        coverage: the topic's words alone, summing to 1."""
        rows, cols, weights, cover_rows, cover_cols, cover_values = [], [], [], [], [], []
        for row, topic in enumerate(topics):
            stems = topic_stems(topic)
            word_idf = [self.term_idf(s) for s in stems]
            features = list(zip(stems, word_idf, strict=True))
            features += [
                (f"{a} {b}", PHRASE_WEIGHT * (wa + wb) / 2)
                for (a, wa), (b, wb) in zip(features, features[1:], strict=False)
            ]
            total = sum(w for _, w in features) or 1.0
            words_total = sum(word_idf) or 1.0
            for position, (feature, weight) in enumerate(features):
                column = self.vocabulary.get(feature)
                if column is None:
                    continue
                rows.append(row)
                cols.append(column)
                weights.append(weight / total)
                if position < len(stems):
                    cover_rows.append(row)
                    cover_cols.append(column)
                    cover_values.append(weight / words_total)
        shape = (len(topics), len(self.vocabulary))
        return (
            sparse.csr_matrix((weights, (rows, cols)), shape=shape, dtype=np.float32),
            sparse.csr_matrix(
                (cover_values, (cover_rows, cover_cols)), shape=shape, dtype=np.float32
            ),
        )

    def relevance(
        self, topics: Sequence[str], *, threshold: float = RELEVANCE_THRESHOLD
    ) -> sparse.csr_matrix:
        """topics × papers relevance in [0, 1]; 0 (not stored) below the threshold or, when a
        threshold is set, for a paper covering less than COVERAGE_THRESHOLD of the topic."""
        blocks = []
        for start in range(0, len(topics), TOPIC_CHUNK):
            chunk = topics[start : start + TOPIC_CHUNK]
            weights, coverage = self.topic_matrices(chunk)
            scores = (weights @ self.saturation.T).tocsr()
            covered = self._covered(chunk, coverage, gate=threshold > 0)
            relevance = scores.multiply(covered).tocsr()
            relevance.data[relevance.data < max(threshold, 1e-6)] = 0
            relevance.eliminate_zeros()
            blocks.append(
                self._with_feedback(relevance, scores, covered, weights).astype(np.float32)
            )
        if not blocks:
            return sparse.csr_matrix((0, len(self.titles)), dtype=np.float32)
        return sparse.vstack(blocks, format="csr")

    def _covered(
        self, topics: Sequence[str], coverage: sparse.csr_matrix, *, gate: bool
    ) -> sparse.csr_matrix:
        """topics × papers, the share of each topic's word weight the paper holds (0..1); with
        `gate`, 0 for a paper holding too little of it or too few of its words."""
        # One product gives both the covered share of the topic's word weight (each word's
        # share < 1) and how many of its words the paper has (each word adds WORD_MARK).
        marked = coverage.copy()
        marked.data += WORD_MARK
        covered = (marked @ self.presence.T).tocsr()
        words = np.floor(covered.data / WORD_MARK + 1e-3)
        covered.data = np.minimum(covered.data - WORD_MARK * words, 1.0)
        if gate:
            # A topic of several words needs two of them: one rare word is not the topic.
            needed = np.asarray([min(2, len(set(topic_stems(t)))) for t in topics])
            row_of = np.repeat(np.arange(covered.shape[0]), np.diff(covered.indptr))
            too_little = (covered.data < COVERAGE_THRESHOLD - 1e-4) | (words < needed[row_of])
            covered.data[too_little] = 0
        covered.eliminate_zeros()
        if COVERAGE_POWER:
            covered.data **= COVERAGE_POWER
        else:
            covered.data[:] = 1.0
        return covered

    def _with_feedback(
        self,
        relevance: sparse.csr_matrix,
        scores: sparse.csr_matrix,
        covered: sparse.csr_matrix,
        weights: sparse.csr_matrix,
    ) -> sparse.csr_matrix:
        """The same entries as `relevance`, rescored with pseudo-relevance feedback: each topic's
        best papers vote for the words they share ("expressive power of transformers" learns
        "circuit", "formal language"), and those words count beside the topic's own."""
        if not relevance.nnz or not FEEDBACK_WEIGHT:
            return relevance
        best = keep_row_top(relevance, FEEDBACK_PAPERS)
        best = sparse.diags(1 / np.maximum(row_sums(best), 1e-9)) @ best
        # A word only one of the best papers uses is that paper's, not the topic's.
        voters = best.copy()
        voters.data[:] = 1
        shared = (voters @ self.telling_presence) >= FEEDBACK_MIN_PAPERS
        votes = (best @ self.telling).multiply(shared)
        # The topic's own words already count; only new words are lent.
        votes = (votes - votes.multiply(weights > 0)).tocsr()
        votes.eliminate_zeros()
        words = keep_row_top(votes, FEEDBACK_WORDS)
        total = row_sums(words)
        words = sparse.diags(1 / np.maximum(total, 1e-9)) @ words
        # A topic whose best papers share no new word (a handful of matches) keeps its score.
        share = np.where(total > 0, FEEDBACK_WEIGHT, 0.0)
        mask = relevance.copy()
        mask.data[:] = 1
        feedback = (words @ self.saturation.T).multiply(mask)
        blended = sparse.diags(1 - share) @ scores.multiply(mask) + sparse.diags(share) @ feedback
        rescored = blended.multiply(covered).tocsr()
        rescored.data = np.maximum(rescored.data, 1e-6)  # stays an entry wherever it was one
        return rescored

    def profile_papers(self) -> sparse.csr_matrix:
        """papers × features: each paper's most telling words as a unit vector, the space reader
        profiles score in (digest.matching.profile)."""
        if self._profile_papers is None:
            norms = np.sqrt(row_sums(self.telling.multiply(self.telling)))
            self._profile_papers = (
                (sparse.diags(1 / np.maximum(norms, 1e-9)) @ self.telling)
                .tocsr()
                .astype(np.float32)
            )
        return self._profile_papers

    def profile_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(the sorted hashes of the vocabulary's words, their columns): profiles store words as
        hashes, so that they map onto any day's vocabulary."""
        if self._profile_columns is None:
            words = [(feature_hash(k), c) for k, c in self.vocabulary.items() if " " not in k]
            hashes = np.fromiter((h for h, _ in words), dtype=np.uint64, count=len(words))
            columns = np.fromiter((c for _, c in words), dtype=np.int64, count=len(words))
            order = np.argsort(hashes)
            self._profile_columns = (hashes[order], columns[order])
        return self._profile_columns

    def mentions(self, phrases: Sequence[str]) -> sparse.csr_matrix:
        """phrases × papers, 1 where the paper mentions the whole phrase (its words, in order)."""
        rows, cols, values = [], [], []
        for row, phrase in enumerate(phrases):
            stems = topic_stems(phrase)
            features = (
                list(stems)
                if len(stems) == 1
                else [f"{a} {b}" for a, b in zip(stems, stems[1:], strict=False)]
            )
            for feature in features:
                rows.append(row)
                cols.append(self.vocabulary.get(feature, -1))
                values.append(1.0 / len(features))
        keep = [i for i, c in enumerate(cols) if c >= 0]
        query = sparse.csr_matrix(
            ([values[i] for i in keep], ([rows[i] for i in keep], [cols[i] for i in keep])),
            shape=(len(phrases), len(self.vocabulary)),
            dtype=np.float32,
        )
        hits = (query @ self.presence.T).tocsr()
        hits.data = (hits.data > 0.999).astype(np.float32)
        hits.eliminate_zeros()
        return hits


_latest: tuple[tuple[tuple[str, ...], tuple[str, ...]], PaperIndex] | None = None


def row_sums(matrix: sparse.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=1)).ravel()


def keep_row_top(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """`matrix` with only each row's k largest entries (ties broken arbitrarily)."""
    matrix = matrix.tocsr()
    lengths = np.diff(matrix.indptr)
    if not matrix.nnz or lengths.max() <= k:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    # One sort on (row, -value): values scaled into [0, 1) below their row number.
    peak = np.maximum(np.abs(matrix.data).max(), 1e-30)
    order = np.argsort(rows - 0.5 * (matrix.data / peak) + 0.5, kind="stable")
    rank_in_row = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    kept = order[rank_in_row < k]
    return sparse.csr_matrix(
        (matrix.data[kept], (rows[kept], matrix.indices[kept])), shape=matrix.shape
    )
