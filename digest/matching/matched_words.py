"""The words of many (paper, topic line) pairs at once, exactly as explanations.explain says them
one pair at a time, with array operations instead of a walk per pair.

Done here: the pairs whose topic holds none of its paper's acronyms nor any whole long form, and
whose runs of matching words are at most RUN_STEMS long, nearly all. There every word found is
the topic's own, so every run of adjacent matches counts, and the title holds the whole topic
when it holds each of its words. The others are left to explain()."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import getitem, itemgetter

import numpy as np

from digest.matching.paper_index import PaperIndex
from digest.matching.profile import concatenated_ranges, numbered
from digest.matching.text import END, SEGMENT, START, STEM, contains_phrase, topic_stems

RUN_STEMS = 3  # a run's stems are packed in one integer key, STEM_BITS each
STEM_BITS = 21
MAX_MATCHED_TERMS = 6
MAX_TOPIC_STEMS = 60  # a topic's distinct stems are bits of one integer


@dataclass
class MatchedWords:
    """For each pair: its terms and whether the title holds the whole topic, where `done`."""

    terms: list[tuple[str, ...]]
    in_title: np.ndarray
    done: np.ndarray


@dataclass
class _Tokens:
    """Every token of the papers' titles and abstracts, in order (paper, field, position); field
    2p is paper p's title, 2p + 1 its abstract. `ids` numbers stems: the vocabulary's columns,
    then the stems only topics or acronyms have."""

    ids: dict[str, int]
    stem: np.ndarray
    start: np.ndarray
    end: np.ndarray
    segment: np.ndarray
    field: np.ndarray
    by_stem: np.ndarray  # token positions sorted by (paper, stem), stable
    keys: np.ndarray  # paper × width + stem of by_stem, ascending
    width: int

    @classmethod
    def of(cls, index: PaperIndex, extra_stems: Sequence[str]) -> _Tokens:
        fields = [tokens for pair in index.tokens for tokens in pair]
        lengths = np.fromiter(map(len, fields), dtype=np.int64, count=len(fields))
        flat = list(chain.from_iterable(fields))
        stems = map(itemgetter(STEM), flat)
        numbers = np.fromiter(
            chain.from_iterable(map(itemgetter(START, END, SEGMENT), flat)),
            dtype=np.int64,
            count=3 * len(flat),
        ).reshape(-1, 3)
        ids = dict(index.vocabulary)
        for stem_ in extra_stems:
            ids.setdefault(stem_, len(ids))
        stem = np.fromiter(map(ids.__getitem__, stems), dtype=np.int64, count=len(flat))
        field = np.repeat(np.arange(len(fields)), lengths)
        width = len(ids) + 1
        keys = (field // 2) * width + stem
        by_stem = np.argsort(keys, kind="stable")
        return cls(
            ids,
            stem,
            numbers[:, 0],
            numbers[:, 1],
            numbers[:, 2],
            field,
            by_stem,
            keys[by_stem],
            width,
        )


def _topic_words(
    topics: Sequence[str], ids: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each distinct stem of each topic, in order: its id, its bit among its topic's; how many
    each topic has)."""
    distinct = [list(dict.fromkeys(topic_stems(topic))) for topic in topics]
    counts = np.fromiter(map(len, distinct), dtype=np.int64, count=len(distinct))
    stems = np.fromiter(
        map(ids.__getitem__, chain.from_iterable(distinct)), dtype=np.int64, count=counts.sum()
    )
    bits = np.arange(len(stems)) - np.repeat(np.cumsum(counts) - counts, counts)
    return stems, bits, counts


def _touched_by_acronyms(
    index: PaperIndex,
    pairs: tuple[np.ndarray, Sequence[str]],
    query_pair: np.ndarray,
    query_keys: np.ndarray,
    tokens: _Tokens,
) -> np.ndarray:
    """Whether each pair's topic holds an acronym of its paper or the whole long form of one
    (explain() then reads the one for the other)."""
    papers, topics = pairs
    touched = np.zeros(len(papers), dtype=bool)
    acronyms = [
        (paper * tokens.width, acronym, long_form)
        for paper in np.unique(papers).tolist()
        for acronym, long_form in index.acronyms[paper].items()
    ]
    if not acronyms:
        return touched
    short = np.asarray([row + tokens.ids[acronym] for row, acronym, _ in acronyms])
    touched[query_pair[np.isin(query_keys, short)]] = True
    # A topic word that starts a long form: does the topic hold the whole of it?
    starts = np.asarray([row + tokens.ids[long_form[0]] for row, _, long_form in acronyms])
    order = np.argsort(starts, kind="stable")
    low = np.searchsorted(starts[order], query_keys, side="left")
    sizes = np.searchsorted(starts[order], query_keys, side="right") - low
    candidates = order[concatenated_ranges(low, sizes)].tolist()
    for pair, acronym in zip(np.repeat(query_pair, sizes).tolist(), candidates, strict=True):
        if not touched[pair] and contains_phrase(topic_stems(topics[pair]), acronyms[acronym][2]):
            touched[pair] = True
    return touched


def matched_words(index: PaperIndex, papers: np.ndarray, topics: Sequence[str]) -> MatchedWords:
    """explain(index, papers[i], topics[i]) for each pair i it can do (`done`)."""
    distinct_topics, topic_of = numbered(topics)
    extra = [
        s
        for paper in np.unique(papers).tolist()
        for acronym, long_form in index.acronyms[paper].items()
        for s in (acronym, *long_form)
    ]
    tokens = _Tokens.of(index, [*chain.from_iterable(map(topic_stems, distinct_topics)), *extra])
    stems, bits, counts = _topic_words(distinct_topics, tokens.ids)
    # One query per (pair, distinct stem of its topic).
    sizes = counts[topic_of]
    query_pair = np.repeat(np.arange(len(papers)), sizes)
    query = concatenated_ranges((np.cumsum(counts) - counts)[topic_of], sizes)
    query_keys = papers[query_pair] * tokens.width + stems[query]
    done = ~_touched_by_acronyms(index, (papers, topics), query_pair, query_keys, tokens)
    low = np.searchsorted(tokens.keys, query_keys, side="left")
    found_sizes = np.searchsorted(tokens.keys, query_keys, side="right") - low
    found = tokens.by_stem[concatenated_ranges(low, found_sizes)]
    found_pair = np.repeat(query_pair, found_sizes)
    found_bit = np.left_shift(1, np.repeat(bits[query], found_sizes))
    order = np.argsort(found_pair * len(tokens.stem) + found, kind="stable")
    found, found_pair, found_bit = found[order], found_pair[order], found_bit[order]
    whole = np.left_shift(1, np.minimum(sizes, MAX_TOPIC_STEMS)) - 1
    in_title = _title_bits(found, found_pair, found_bit, tokens, len(papers)) == whole
    done &= sizes < MAX_TOPIC_STEMS
    runs = _Runs.of(found, found_pair, found_bit, tokens)
    done[runs.pair[runs.length > RUN_STEMS]] = False
    done &= len(tokens.ids) < 2**STEM_BITS - 1
    terms = _terms(index, runs, done, len(papers), tokens)
    return MatchedWords(terms, in_title, done)


def _title_bits(
    found: np.ndarray, pair: np.ndarray, bit: np.ndarray, tokens: _Tokens, n: int
) -> np.ndarray:
    title_bits = np.zeros(n, dtype=np.int64)
    in_title = tokens.field[found] % 2 == 0
    np.bitwise_or.at(title_bits, pair[in_title], bit[in_title])
    return title_bits


@dataclass
class _Runs:
    """Runs of adjacent matches (one field, one segment), in order; each one's pair, first and
    last token, length and the bits of the topic's stems it holds."""

    pair: np.ndarray
    first: np.ndarray
    last: np.ndarray
    length: np.ndarray
    bits: np.ndarray

    @classmethod
    def of(cls, found: np.ndarray, pair: np.ndarray, bit: np.ndarray, tokens: _Tokens) -> _Runs:
        if not len(found):
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, empty)
        goes_on = (
            (pair[1:] == pair[:-1])
            & (found[1:] == found[:-1] + 1)
            & (tokens.field[found[1:]] == tokens.field[found[:-1]])
            & (tokens.segment[found[1:]] == tokens.segment[found[:-1]])
        )
        starts = np.flatnonzero(np.concatenate([[True], ~goes_on]))
        ends = np.concatenate([starts[1:], [len(found)]]) - 1
        first, last = found[starts], found[ends]
        bits = np.bitwise_or.reduceat(bit, starts)
        return cls(pair[starts], first, last, last - first + 1, bits)

    def only(self, kept: np.ndarray) -> _Runs:
        return _Runs(*(values[kept] for values in vars(self).values()))

    def contents(self, tokens: _Tokens) -> np.ndarray:
        """Each run's stems (of up to RUN_STEMS) packed in one key."""
        key = np.zeros(len(self.first), dtype=np.int64)
        for offset in range(RUN_STEMS):
            has = self.length > offset
            stem = tokens.stem[np.minimum(self.first + offset, len(tokens.stem) - 1)] + 1
            key |= np.where(has, stem, 0) << (STEM_BITS * offset)
        return key


def _terms(
    index: PaperIndex, runs: _Runs, done: np.ndarray, n: int, tokens: _Tokens
) -> list[tuple[str, ...]]:
    """Each pair's terms: the first surface of each distinct run, longest first (the earliest
    of equals), without those whose words a listed one already has."""
    runs = runs.only(done[runs.pair])
    if not len(runs.pair):
        return [()] * n
    pair, first, last, length, bits = runs.pair, runs.first, runs.last, runs.length, runs.bits
    content = runs.contents(tokens)
    # The first run of each distinct content of a pair: its surface.
    order = np.lexsort((np.arange(len(pair)), content, pair))
    heads = order[
        np.concatenate(
            [
                [True],
                (pair[order][1:] != pair[order][:-1]) | (content[order][1:] != content[order][:-1]),
            ]
        )
    ]
    heads.sort()
    # Longest first, then in order of appearance.
    heads = heads[np.lexsort((heads, -length[heads], pair[heads]))]
    covered = _covered_by_earlier(pair[heads], bits[heads])
    listed = heads[~covered]
    group_start = np.searchsorted(pair[listed], pair[listed], side="left")
    listed = listed[np.arange(len(listed)) - group_start < MAX_MATCHED_TERMS]
    field_texts = [
        text for both in zip(index.titles, index.abstracts, strict=True) for text in both
    ]
    texts = map(field_texts.__getitem__, tokens.field[first[listed]].tolist())
    spans = map(slice, tokens.start[first[listed]].tolist(), tokens.end[last[listed]].tolist())
    surfaces = list(map(getitem, texts, spans))
    ends = np.cumsum(np.bincount(pair[listed], minlength=n)).tolist()
    return list(map(tuple, map(surfaces.__getitem__, map(slice, [0, *ends[:-1]], ends))))


def _covered_by_earlier(pair: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Whether each entry's stems are all among those of an earlier entry of the same pair
    (entries grouped by pair). An entry a listed one covers is not listed; one that only an
    unlisted one covers is covered by what covers that one as well."""
    group_start = np.searchsorted(pair, pair, side="left")
    earlier = np.arange(len(pair)) - group_start
    entry = np.repeat(np.arange(len(pair)), earlier)
    other = concatenated_ranges(group_start, earlier)
    inside = (bits[entry] & ~bits[other]) == 0
    return np.bincount(entry[inside], minlength=len(pair)) > 0
