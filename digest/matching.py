"""Ranking papers for subscribers, and the explanation of each match.

Papers and topic lines become rows of sparse matrices over one vocabulary of word stems and of
adjacent stem pairs (so a phrase typed as a topic scores higher in order than as loose words).
One sparse product scores every distinct topic line against every paper; each subscriber keeps the
best of their topic lines, then masks (window, already sent, exclusions, threshold) and a top-k
pick the digest. Nothing loops over subscriber × paper pairs, and the database is asked a fixed
number of questions whatever the number of subscribers.
"""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, wraps

import numpy as np
from django.db.models import Max
from scipy import sparse

from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

# BM25-style saturation of a term's weighted count in a paper.
K1 = 1.2
B = 0.75
TITLE_WEIGHT = 4.0  # a word in the title counts as this many in the abstract
PHRASE_WEIGHT = 1.0  # weight of each adjacent pair of a topic, relative to its words' mean idf
COVERAGE_POWER = 1.0  # soft AND: relevance × (share of the topic's words present) ** power
TREND_WEIGHT = 0.15  # trending lifts relevance by at most this fraction
# A paper is sent only if it holds at least this share of the topic's word weight (idf) and two
# of its words (one for a one-word topic), so a paper sharing only a topic's common words
# ("neural networks" of "spiking neural networks") or its one rare word is not; and its relevance
# (0..1) reaches the floor below, so a lone passing mention is not either.
COVERAGE_THRESHOLD = 0.5
RELEVANCE_THRESHOLD = 0.05
WORD_MARK = 2.0  # > any word's share of a topic (shares sum to 1)
PIN_BONUS = 10.0  # pinned papers that match sort before everything else
# Pseudo-relevance feedback (as RM3): a topic's best FEEDBACK_PAPERS matches lend it the
# FEEDBACK_WORDS most telling words they share, which then count FEEDBACK_WEIGHT of its score.
# It reorders the papers that pass the threshold on the topic's own words; it never adds one.
FEEDBACK_PAPERS = 10
FEEDBACK_WORDS = 10
FEEDBACK_WEIGHT = 0.5
FEEDBACK_MIN_PAPERS = 2  # a word lent must be used by this many of them
PAPER_WORDS_FOR_FEEDBACK = 40  # a paper offers only its most telling words
FIRST_DIGEST_WINDOW = timedelta(days=7)
SUBSCRIBER_CHUNK = 1024  # subscribers scored together in one dense block
TOPIC_CHUNK = 4096  # distinct topic lines scored together
QUERY_CHUNK = 30_000  # ids per IN (...) clause: under SQLite's 32,766 parameters
MAX_MATCHED_TERMS = 6

_STOPWORDS_TEXT = """a an and are as at be by can do does for from has have how in into is it its
of on or our s t that the their this to toward towards via vs we what when which why with without"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
KEEP_WHOLE = frozenset({"embed", "embeds", "speed", "speeds", "seed", "seeds", "need", "feed"})
TOKEN = re.compile(r"[^\W_]+|[.,;:!?()\[\]{}\"]")  # words (any script) and punctuation
ACRONYM = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Za-z][A-Za-z0-9]{1,9}$")
PARENTHESIS = re.compile(r"\(([^()]{1,80})\)")


def _without_cycle_collection(function: Callable) -> Callable:
    """Ranking makes millions of small objects, none in a reference cycle; the cyclic garbage
    collector would otherwise rescan every live object again and again while they are made."""

    @wraps(function)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper


@dataclass(frozen=True)
class Match:
    paper_id: int
    score: float
    pinned: bool
    topic: str
    matched_terms: tuple[str, ...]
    why: str


# --- words ---------------------------------------------------------------------------------------


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A small suffix stripper: plurals and the commonest word forms meet at one stem."""
    w = word.lower()
    if w in KEEP_WHOLE:  # "embed" is no -ed form of "emb"
        return w.removesuffix("s")
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix, replacement in (("ational", "ate"), ("ization", "ize"), ("ation", "ate")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + replacement
            break
    else:
        for suffix in ("ing", "ed", "ive"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                w = w[: -len(suffix)]
                if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
                    w = w[:-1]  # embedd(ing) -> embed
                break
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    return w


# A content word: (stem, start, end, segment). Words of different segments (split by
# punctuation) are never adjacent. Plain tuples: millions are made per digest round.
Token = tuple[str, int, int, int]
STEM, START, END, SEGMENT = range(4)


def analyze(text: str) -> list[Token]:
    """Content words of `text` with their stems, positions and punctuation-delimited segments."""
    tokens: list[Token] = []
    segment = 0
    for found in TOKEN.finditer(text):
        start, end = found.span()
        word = text[start:end]
        if not word[0].isalnum():
            segment += 1
            continue
        lower = word.lower()
        if lower not in STOPWORDS:
            tokens.append((stem(lower), start, end, segment))
    return tokens


@lru_cache(maxsize=200_000)
def topic_stems(topic: str) -> tuple[str, ...]:
    return tuple(token[STEM] for token in analyze(topic))


def parse_topic_lines(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """(topics, exclusions): a line starting with '-' excludes papers that mention it."""
    topics, exclusions = [], []
    for raw in lines:
        line = " ".join(raw.split())
        if line.startswith("-"):
            line = line[1:].strip()
            if topic_stems(line):
                exclusions.append(line)
        elif topic_stems(line):
            topics.append(line)
    return topics, exclusions


# --- acronyms ------------------------------------------------------------------------------------


def _spells(letters: str, words: Sequence[str]) -> bool:
    """Whether the words spell the acronym: each content word gives 1-3 leading letters in order,
    a stopword gives its first letter or nothing ("Mixture of Experts" = MoE, "LoRA", "RLHF")."""
    if not words:
        return not letters
    word, rest = words[0].lower(), words[1:]
    if word in STOPWORDS and _spells(letters, rest):
        return True
    for size in (1, 2, 3):
        if size <= len(word) and letters.startswith(word[:size]) and _spells(letters[size:], rest):
            return True
    return False


def _acronym_letters(word: str) -> str | None:
    if not ACRONYM.match(word):
        return None
    letters = word[:-1] if word.endswith("s") and word[-2:-1].isupper() else word
    return letters.lower() if letters.isalpha() else None


def find_acronyms(text: str) -> dict[str, tuple[str, ...]]:
    """Acronyms the text defines, "Mixture-of-Experts (MoE)" or "MoE (mixture of experts)":
    {acronym stem: stems of its long form}."""
    acronyms: dict[str, tuple[str, ...]] = {}

    def define(acronym: str, long_form: Sequence[str]) -> None:
        stems = topic_stems(" ".join(long_form))
        if len(stems) > 1:
            acronyms[stem(acronym)] = stems

    for group in PARENTHESIS.finditer(text):
        inside = TOKEN.findall(group.group(1))
        before = TOKEN.findall(text[max(0, group.start() - 120) : group.start()])
        # "Neural architecture search (NAS)", or with the words the long form follows repeated
        # before the acronym: "One-shot neural architecture search (One-shot NAS)".
        if (
            inside
            and len(inside) <= 3
            and all(word[0].isalnum() for word in inside)
            and (letters := _acronym_letters(inside[-1]))
        ):
            words: list[str] = []
            for earlier in reversed(before[-(len(letters) + 3) :]):
                if not earlier[0].isalnum():
                    break
                words.insert(0, earlier)
            for size in range(1, len(words) + 1):
                long_form = words[-size:]
                if long_form[0].lower() not in STOPWORDS and _spells(letters, long_form):
                    define(inside[-1], long_form)
                    break
        elif (
            len(inside) > 1
            and before
            and (letters := _acronym_letters(before[-1]))
            and inside[0].lower() not in STOPWORDS
            and _spells(letters, inside)
        ):
            define(before[-1], inside)
    return acronyms


# --- papers --------------------------------------------------------------------------------------


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


@lru_cache(maxsize=100_000)
def _contains(stems: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    return _phrase_count(stems, phrase) > 0


def _phrase_count(stems: Sequence[str], phrase: Sequence[str]) -> int:
    n, phrase = len(phrase), tuple(phrase)
    return sum(1 for i in range(len(stems) - n + 1) if tuple(stems[i : i + n]) == phrase)


def _field_counts(runs: list[list[str]], acronyms: dict[str, tuple[str, ...]]) -> Counter:
    """How often each stem and each adjacent pair of stems occurs; a defined acronym and its long
    form stand for each other."""
    counts = Counter(s for run in runs for s in run)
    counts.update(f"{a} {b}" for run in runs for a, b in zip(run, run[1:], strict=False))
    for acronym, long_form in acronyms.items():
        said_short = counts.get(acronym, 0)
        said_long = sum(_phrase_count(run, long_form) for run in runs)
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
    _where: dict[int, tuple[dict[str, list[int]], ...]] = field(default_factory=dict)

    @classmethod
    @_without_cycle_collection
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

    def _positions(self, paper: int) -> tuple[dict[str, list[int]], ...]:
        """Where each stem occurs in the paper's title and abstract tokens."""
        if paper not in self._where:
            maps = []
            for tokens in self.tokens[paper]:
                where: dict[str, list[int]] = {}
                for i, token in enumerate(tokens):
                    where.setdefault(token[STEM], []).append(i)
                maps.append(where)
            self._where[paper] = tuple(maps)
        return self._where[paper]

    def explain(self, paper: int, topic: str) -> tuple[tuple[str, ...], bool]:
        """(the paper's own words that matched the topic, whether the title matched)."""
        stems = topic_stems(topic)
        own = set(stems)
        long_forms = []
        for acronym, long_form in self.acronyms[paper].items():
            if acronym in own:
                long_forms.append(long_form)
            elif _contains(stems, long_form):
                own.add(acronym)
        wanted = own.union(*long_forms)
        surfaces: dict[tuple[str, ...], str | None] = {}  # first surface of each run of stems
        in_title = False
        texts = (self.titles[paper], self.abstracts[paper])
        fields = zip(self.tokens[paper], self._positions(paper), strict=True)
        for number, (tokens, where) in enumerate(fields):
            found = [i for s in wanted if s in where for i in where[s]]
            found.sort()
            runs: list[list[int]] = []
            for i in found:
                if runs and runs[-1][-1] == i - 1 and tokens[i - 1][SEGMENT] == tokens[i][SEGMENT]:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            for run in runs:
                run_stems = tuple(tokens[i][STEM] for i in run)
                if run_stems in surfaces:
                    continue
                surfaces[run_stems] = None
                # A long form's words count only together: "language" alone is not "LLM".
                if own.intersection(run_stems) or any(_contains(run_stems, f) for f in long_forms):
                    surfaces[run_stems] = texts[number][
                        tokens[run[0]][START] : tokens[run[-1]][END]
                    ]
                    in_title = in_title or number == 0
        # Longest first; a word already inside a listed phrase ("experts" after "Mixture of
        # Experts") or another form of a listed word ("MoEs" after "MoE") adds nothing.
        terms: list[str] = []
        kept: list[frozenset[str]] = []
        for run_stems in sorted(surfaces, key=len, reverse=True):
            if (surface := surfaces[run_stems]) and not any(
                kept_ >= set(run_stems) for kept_ in kept
            ):
                kept.append(frozenset(run_stems))
                terms.append(surface)
        return tuple(terms[:MAX_MATCHED_TERMS]), in_title


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


@dataclass
class Picks:
    """Every interest's papers, best first, as flat arrays: interest i owns the next counts[i]."""

    topics: list[str]  # distinct topic lines; `lines` index into it
    counts: np.ndarray
    papers: np.ndarray
    lines: np.ndarray
    scores: np.ndarray


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


@_without_cycle_collection
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

    counts, papers, lines, scores = [], [], [], []
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
        best_line = np.argmax(np.vstack(line_scores), axis=0)
        lines.append(slots[a + rows, best_line])
        scores.append(best[rows, picked] * lift[picked])
    picks.counts = np.concatenate(counts)
    if papers:
        picks.papers = np.concatenate(papers)
        picks.lines = np.concatenate(lines)
        picks.scores = np.round(np.concatenate(scores).astype(np.float64), 4)
    return picks


@_without_cycle_collection
def to_matches(
    index: PaperIndex, picks: Picks, paper_ids: Sequence[int], pinned: Sequence[bool]
) -> list[list[Match]]:
    """Match objects for the picks; one per distinct (paper, topic line), shared by readers."""
    if not len(picks.papers):
        return [[] for _ in picks.counts]
    pair = picks.papers * len(picks.topics) + picks.lines
    _, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    papers, lines, scores = (picks.papers[first], picks.lines[first], picks.scores[first])
    pinned = np.asarray(pinned, dtype=bool).tolist()
    made = []
    for paper, line, score in zip(papers.tolist(), lines.tolist(), scores.tolist(), strict=True):
        topic = picks.topics[line]
        terms, in_title = index.explain(paper, topic)
        why = f'Matches your topic "{topic}"{" in the title" if in_title else ""}: '
        why += ", ".join(terms)
        if pinned[paper]:
            why = f"Pinned by the editors. {why}"
        made.append(Match(paper_ids[paper], score, pinned[paper], topic, terms, why))
    every = list(map(made.__getitem__, inverse.reshape(-1).tolist()))
    ends = np.cumsum(picks.counts).tolist()
    return [every[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)]


# --- from the database ---------------------------------------------------------------------------


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
