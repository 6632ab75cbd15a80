"""Ranking papers for subscribers, and the explanation of each match.

Papers and topic lines become rows of sparse matrices over one vocabulary of word stems and of
adjacent stem pairs (so a phrase typed as a topic scores far higher in order than as loose words).
One sparse product scores every distinct topic line against every paper; each subscriber keeps the
best of their topic lines, then masks (window, already sent, exclusions, threshold) and a top-k
pick the digest. Nothing loops over subscriber × paper pairs, and the database is asked a fixed
number of questions whatever the number of subscribers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
from django.db.models import Max
from scipy import sparse

from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

# BM25-style saturation of a term's weighted count in a paper.
K1 = 1.2
B = 0.75
TITLE_WEIGHT = 2.5  # a word in the title counts as this many in the abstract
PHRASE_WEIGHT = 2.0  # weight of each adjacent pair of a topic, relative to its words' mean idf
COVERAGE_POWER = 1.0  # soft AND: relevance × (share of the topic's words present) ** power
TREND_WEIGHT = 0.15  # trending lifts relevance by at most this fraction
RELEVANCE_THRESHOLD = 0.3  # below this (0..1) a paper is not sent
PIN_BONUS = 10.0  # pinned papers that match sort before everything else
FIRST_DIGEST_WINDOW = timedelta(days=7)
SUBSCRIBER_CHUNK = 2048  # subscribers scored together in one dense block
QUERY_CHUNK = 5000  # ids per IN (...) clause
MAX_MATCHED_TERMS = 6

_STOPWORDS_TEXT = """a an and are as at be by can do does for from has have how in into is it its
of on or our s t that the their this to toward towards via vs we what when which why with without"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
KEEP_WHOLE = frozenset({"embed", "embeds", "speed", "speeds", "seed", "seeds", "need", "feed"})
TOKEN = re.compile(r"[A-Za-z0-9]+|[.,;:!?()\[\]{}\"]")
ACRONYM = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Za-z][A-Za-z0-9]{1,9}$")
OPEN, CLOSE = "(", ")"


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
    if len(w) <= 3 or w.isdigit() or w in KEEP_WHOLE:
        return w.removesuffix("s") if w in KEEP_WHOLE else w
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


@dataclass(frozen=True)
class Token:
    stem: str
    start: int
    end: int
    segment: int  # tokens of different segments (split by punctuation) are never adjacent


def analyze(text: str) -> list[Token]:
    """Content words of `text` with their stems, positions and punctuation-delimited segments."""
    tokens: list[Token] = []
    segment = 0
    for found in TOKEN.finditer(text):
        word = found.group()
        if not word[0].isalnum():
            segment += 1
            continue
        lower = word.lower()
        if lower in STOPWORDS:
            continue
        tokens.append(Token(stem(lower), found.start(), found.end(), segment))
    return tokens


def topic_stems(topic: str) -> tuple[str, ...]:
    return tuple(token.stem for token in analyze(topic))


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
    words = [found.group() for found in TOKEN.finditer(text)]
    acronyms: dict[str, tuple[str, ...]] = {}

    def define(acronym: str, long_form: Sequence[str]) -> None:
        stems = topic_stems(" ".join(long_form))
        if len(stems) > 1:
            acronyms[stem(acronym)] = stems

    for i, word in enumerate(words):
        if word != OPEN or CLOSE not in words[i + 1 : i + 12]:
            continue
        inside = words[i + 1 : words.index(CLOSE, i + 1)]
        if len(inside) == 1 and (letters := _acronym_letters(inside[0])):
            before: list[str] = []
            for earlier in reversed(words[max(0, i - len(letters) - 3) : i]):
                if not earlier[0].isalnum():
                    break
                before.insert(0, earlier)
            for size in range(1, len(before) + 1):
                long_form = before[-size:]
                if long_form[0].lower() not in STOPWORDS and _spells(letters, long_form):
                    define(inside[0], long_form)
                    break
        elif (
            len(inside) > 1
            and i > 0
            and (letters := _acronym_letters(words[i - 1]))
            and inside[0].lower() not in STOPWORDS
            and _spells(letters, inside)
        ):
            define(words[i - 1], inside)
    return acronyms


# --- papers --------------------------------------------------------------------------------------


def _pairs(tokens: Sequence[Token]) -> list[str]:
    return [
        f"{a.stem} {b.stem}"
        for a, b in zip(tokens, tokens[1:], strict=False)
        if a.segment == b.segment
    ]


def _phrase_count(stems: Sequence[str], phrase: Sequence[str]) -> int:
    n = len(phrase)
    return sum(1 for i in range(len(stems) - n + 1) if tuple(stems[i : i + n]) == tuple(phrase))


def _field_counts(tokens: Sequence[Token], acronyms: dict[str, tuple[str, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for feature in [t.stem for t in tokens] + _pairs(tokens):
        counts[feature] = counts.get(feature, 0) + 1
    # A defined acronym and its long form stand for each other.
    stems = [t.stem for t in tokens]
    for acronym, long_form in acronyms.items():
        said_short = counts.get(acronym, 0)
        said_long = _phrase_count(stems, long_form)
        if said_long:
            counts[acronym] = counts.get(acronym, 0) + said_long
        if said_short:
            for feature in list(long_form) + [
                f"{a} {b}" for a, b in zip(long_form, long_form[1:], strict=False)
            ]:
                counts[feature] = counts.get(feature, 0) + said_short
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
    acronyms: list[dict[str, tuple[str, ...]]] = field(default_factory=list)

    @classmethod
    def build(cls, titles: Sequence[str], abstracts: Sequence[str]) -> PaperIndex:
        index = cls(list(titles), list(abstracts))
        vocabulary = index.vocabulary
        rows, cols, values = [], [], []
        lengths = np.zeros(len(index.titles), dtype=np.float32)
        for row, (title, abstract) in enumerate(zip(index.titles, index.abstracts, strict=True)):
            acronyms = find_acronyms(f"{title}. {abstract}")
            index.acronyms.append(acronyms)
            title_tokens, abstract_tokens = analyze(title), analyze(abstract)
            counts = {
                key: TITLE_WEIGHT * value
                for key, value in _field_counts(title_tokens, acronyms).items()
            }
            for key, value in _field_counts(abstract_tokens, acronyms).items():
                counts[key] = counts.get(key, 0.0) + value
            lengths[row] = TITLE_WEIGHT * len(title_tokens) + len(abstract_tokens)
            for key, value in counts.items():
                rows.append(row)
                cols.append(vocabulary.setdefault(key, len(vocabulary)))
                values.append(value)
        shape = (len(index.titles), len(vocabulary))
        tf = sparse.csr_matrix(
            (np.asarray(values, dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
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

    def relevance(self, topics: Sequence[str]) -> sparse.csr_matrix:
        """topics × papers relevance in [0, 1]."""
        weights, coverage = self.topic_matrices(topics)
        scores = (weights @ self.saturation.T).tocsr()
        if COVERAGE_POWER:
            covered = (coverage @ self.presence.T).tocsr()
            covered.data = np.minimum(covered.data, 1.0) ** COVERAGE_POWER
            scores = scores.multiply(covered).tocsr()
        return scores

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

    def explain(self, paper: int, topic: str) -> tuple[tuple[str, ...], bool]:
        """(the paper's own words that matched the topic, whether the title matched)."""
        own = set(topic_stems(topic))
        long_forms = []
        for acronym, long_form in self.acronyms[paper].items():
            if acronym in own:
                long_forms.append(long_form)
            elif _phrase_count(topic_stems(topic), long_form):
                own.add(acronym)
        wanted = own.union(*long_forms)

        def counts(run: list[Token]) -> bool:
            stems = [token.stem for token in run]
            return bool(own.intersection(stems)) or any(_phrase_count(stems, f) for f in long_forms)

        terms: dict[str, str] = {}
        in_title = False
        for is_title, text in ((True, self.titles[paper]), (False, self.abstracts[paper])):
            run: list[Token] = []
            for token in [*analyze(text), None]:
                if token and token.stem in wanted and (not run or run[-1].segment == token.segment):
                    run.append(token)
                    continue
                if run and counts(run):
                    surface = text[run[0].start : run[-1].end]
                    terms.setdefault(surface.lower(), surface)
                    in_title = in_title or is_title
                run = [token] if token and token.stem in wanted else []
        return tuple(list(terms.values())[:MAX_MATCHED_TERMS]), in_title


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
class Ranked:
    paper: int
    score: float
    relevance: float
    topic: str


def rank(
    index: PaperIndex,
    interests: Sequence[Interest],
    *,
    upvotes: Sequence[int],
    seen_counts: Sequence[int],
    pinned: Sequence[bool],
    first_seen: Sequence[float] | None = None,
    already_sent: tuple[Sequence[int], Sequence[int]] = ((), ()),
) -> list[list[Ranked]]:
    """For each interest, its papers best first: pinned matches, then relevance lifted a little by
    trending; nothing below the threshold, out of the window, excluded or already sent
    (already_sent: parallel lists of interest and paper positions)."""
    n_papers = len(index.titles)
    results: list[list[Ranked]] = [[] for _ in interests]
    if not n_papers or not interests:
        return results
    lift = 1 + TREND_WEIGHT * trend(np.asarray(upvotes), np.asarray(seen_counts))
    pin = np.asarray(pinned, dtype=bool)
    times = np.asarray(
        first_seen if first_seen is not None else np.zeros(n_papers), dtype=np.float64
    )

    # Every distinct topic line and exclusion is scored once, against every paper.
    topic_ids: dict[str, int] = {}
    exclusion_ids: dict[str, int] = {}
    line_ptr = [0]
    flat_topics: list[int] = []
    ex_rows, ex_cols = [], []
    for row, interest in enumerate(interests):
        for topic in interest.topics:
            flat_topics.append(topic_ids.setdefault(topic, len(topic_ids)))
        line_ptr.append(len(flat_topics))
        for exclusion in interest.exclusions:
            ex_rows.append(row)
            ex_cols.append(exclusion_ids.setdefault(exclusion, len(exclusion_ids)))
    topic_list = list(topic_ids)
    if not topic_list:
        return results
    relevance = index.relevance(topic_list)
    flat = np.asarray(flat_topics, dtype=np.int64)
    ptr = np.asarray(line_ptr, dtype=np.int64)
    counts = np.diff(ptr)
    excluded = sparse.csr_matrix(
        (np.ones(len(ex_rows), dtype=np.float32), (ex_rows, ex_cols)),
        shape=(len(interests), len(exclusion_ids)),
    ) @ index.mentions(list(exclusion_ids))
    excluded = sparse.csr_matrix(excluded)
    sent_rows, sent_cols = already_sent
    sent = sparse.csr_matrix(
        (np.ones(len(sent_rows), dtype=np.float32), (sent_rows, sent_cols)),
        shape=(len(interests), n_papers),
    )
    since = np.asarray([interest.since for interest in interests], dtype=np.float64)
    limits = np.asarray([interest.limit for interest in interests], dtype=np.int64)
    with_topics = np.flatnonzero(counts > 0)

    for chunk_start in range(0, len(with_topics), SUBSCRIBER_CHUNK):
        members = with_topics[chunk_start : chunk_start + SUBSCRIBER_CHUNK]
        # Interests without topics hold no lines, so the chunk's lines are one contiguous run.
        lines = flat[ptr[members[0]] : ptr[members[-1] + 1]]
        line_scores = relevance[lines].toarray()
        local_starts = np.concatenate([[0], np.cumsum(counts[members])[:-1]])
        best = np.maximum.reduceat(line_scores, local_starts, axis=0)
        best[times[None, :] < since[members, None]] = 0
        best[excluded[members].toarray() > 0] = 0
        best[sent[members].toarray() > 0] = 0
        best[best < RELEVANCE_THRESHOLD] = 0
        keys = best * lift[None, :] + PIN_BONUS * (pin[None, :] & (best > 0))
        k = int(min(limits[members].max(), n_papers))
        if k <= 0:
            continue
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        top_keys = np.take_along_axis(keys, top, axis=1)
        order = np.argsort(-top_keys, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_keys = np.take_along_axis(top_keys, order, axis=1)
        # Which of the interest's lines matched best, vectorized over the picked pairs.
        member_counts = counts[members]
        best_line = np.zeros(top.shape, dtype=np.int64)
        best_value = np.full(top.shape, -1.0, dtype=np.float32)
        for j in range(int(member_counts.max())):
            valid = (j < member_counts)[:, None]
            line_rows = np.minimum(local_starts + j, len(lines) - 1)[:, None]
            values = np.where(valid, line_scores[line_rows, top], -1.0)
            better = values > best_value
            best_value = np.where(better, values, best_value)
            best_line = np.where(better, j, best_line)
        relevance_top = np.take_along_axis(best, top, axis=1)
        for i, member in enumerate(members.tolist()):
            picked = results[member]
            limit = int(limits[member])
            for paper, key, rel, line in zip(
                top[i].tolist(),
                top_keys[i].tolist(),
                relevance_top[i].tolist(),
                best_line[i].tolist(),
                strict=True,
            ):
                if key <= 0 or len(picked) >= limit:
                    break
                topic = topic_list[flat[ptr[member] + line]]
                picked.append(
                    Ranked(paper, round(float(key - PIN_BONUS * pin[paper]), 4), rel, topic)
                )
    return results


def to_matches(
    index: PaperIndex, ranked: list[list[Ranked]], paper_ids: Sequence[int], pinned: Sequence[bool]
) -> list[list[Match]]:
    explained: dict[tuple[int, str], tuple[tuple[str, ...], str]] = {}
    out = []
    for picks in ranked:
        matches = []
        for pick in picks:
            key = (pick.paper, pick.topic)
            if key not in explained:
                terms, in_title = index.explain(pick.paper, pick.topic)
                where = " in the title" if in_title else ""
                why = f'Matches your topic "{pick.topic}"{where}: {", ".join(terms)}'
                if pinned[pick.paper]:
                    why = f"Pinned by the editors. {why}"
                explained[key] = (terms, why)
            terms, why = explained[key]
            matches.append(
                Match(
                    paper_id=paper_ids[pick.paper],
                    score=pick.score,
                    pinned=bool(pinned[pick.paper]),
                    topic=pick.topic,
                    matched_terms=terms,
                    why=why,
                )
            )
        out.append(matches)
    return out


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
    ranked = rank(
        index,
        interests,
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
        first_seen=[moment.timestamp() for moment in first_seen],
        already_sent=(sent_rows, sent_cols),
    )
    matches = to_matches(index, ranked, ids, pinned)
    return {s.id: picks for s, picks in zip(subscribers, matches, strict=True)}


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
    ranked = rank(
        index,
        [Interest(topics, exclusions, limit)],
        upvotes=upvotes,
        seen_counts=seen,
        pinned=pinned,
    )
    return to_matches(index, ranked, ids, pinned)[0]
