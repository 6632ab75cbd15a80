"""The explanation of each match: which topic, and the paper's own words that matched it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.matching.allocation import without_cycle_collection
from digest.matching.matched_words import MAX_MATCHED_TERMS, matched_words
from digest.matching.paper_index import PaperIndex
from digest.matching.ranking import Picks
from digest.matching.semantic_blend import is_liked_line
from digest.matching.text import contains_phrase, topic_stems


@dataclass(frozen=True)
class Match:
    paper_id: int
    score: float
    pinned: bool
    topic: str
    matched_terms: tuple[str, ...]
    why: str
    liked_title: str = ""  # the paper rated up it is like, when the reader's profile chose it


@dataclass(frozen=True)
class _Field:
    """A paper's title or abstract as explain() reads it: its text, each token's stem, segment
    and span, and where each stem occurs."""

    text: str
    stems: tuple[str, ...]
    segments: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    where: dict[str, list[int]]


def _field(text: str, tokens: Sequence[tuple]) -> _Field:
    stems, starts, ends, segments = zip(*tokens, strict=True) if tokens else ((), (), (), ())
    where: dict[str, list[int]] = {}
    for i, stem_ in enumerate(stems):
        if stem_ in where:
            where[stem_].append(i)
        else:
            where[stem_] = [i]
    return _Field(text, stems, segments, starts, ends, where)


def _fields(index: PaperIndex, paper: int) -> tuple[_Field, _Field]:
    fields = index.positions.get(paper)
    if fields is None:
        title_tokens, abstract_tokens = index.tokens[paper]
        fields = index.positions[paper] = (
            _field(index.titles[paper], title_tokens),
            _field(index.abstracts[paper], abstract_tokens),
        )
    return fields


def explain(index: PaperIndex, paper: int, topic: str) -> tuple[tuple[str, ...], bool]:
    """(the paper's own words that matched the topic, whether the title holds the whole topic)."""
    stems = topic_stems(topic)
    own = set(stems)
    long_forms = []
    acronyms = index.acronyms[paper]
    for acronym, long_form in acronyms.items():
        if acronym in own:
            long_forms.append(long_form)
        elif long_form[0] in own and contains_phrase(stems, long_form):
            own.add(acronym)
    wanted = own.union(*long_forms) if long_forms else own
    surfaces: dict[tuple[str, ...], str | None] = {}  # first surface of each run of stems
    in_title: set[str] = set()  # stems of the title's matching runs
    title, abstract = _fields(index, paper)
    for field_ in (title, abstract):
        where = field_.where
        if where.keys().isdisjoint(wanted):
            continue
        found = [i for s in wanted if s in where for i in where[s]]
        found.sort()
        segments, field_stems = field_.segments, field_.stems
        first = last = found[0]
        # Each run of adjacent matches (in one segment), then the one that ends the field.
        for i in [*found[1:], -2]:
            if i == last + 1 and segments[last] == segments[i]:
                last = i
                continue
            run_stems = field_stems[first : last + 1]
            if run_stems not in surfaces:
                surfaces[run_stems] = None
                # A long form's words count only together: "language" alone is not "LLM". (Without
                # long forms every stem found is the topic's own.)
                if (
                    not long_forms
                    or not own.isdisjoint(run_stems)
                    or any(contains_phrase(run_stems, f) for f in long_forms)
                ):
                    surfaces[run_stems] = field_.text[field_.starts[first] : field_.ends[last]]
                    if field_ is title:
                        in_title.update(run_stems)
            first = last = i
    return _terms(surfaces), _in_title(in_title, acronyms, stems)


def _terms(surfaces: dict[tuple[str, ...], str | None]) -> tuple[str, ...]:
    """Longest first; a word already inside a listed phrase ("experts" after "Mixture of
    Experts") or another form of a listed word ("MoEs" after "MoE") adds nothing."""
    if len(surfaces) == 1:
        return tuple(surface for surface in surfaces.values() if surface)
    terms: list[str] = []
    kept: list[frozenset[str]] = []
    for run_stems in sorted(surfaces, key=len, reverse=True):
        if surface := surfaces[run_stems]:
            run_set = frozenset(run_stems)
            if not any(kept_ >= run_set for kept_ in kept):
                kept.append(run_set)
                terms.append(surface)
    return tuple(terms[:MAX_MATCHED_TERMS])


def _in_title(
    in_title: set[str], acronyms: dict[str, tuple[str, ...]], stems: tuple[str, ...]
) -> bool:
    """ "In the title" only when the title alone says every word of the topic (an acronym standing
    for its long form): "Foundation Model" is not "diffusion models"."""
    for acronym, long_form in acronyms.items():
        if acronym in in_title:
            in_title.update(long_form)
        elif in_title.issuperset(long_form):
            in_title.add(acronym)
    return in_title.issuperset(stems)


def _said(
    index: PaperIndex, picks: Picks, picked: np.ndarray, liked_lines: np.ndarray
) -> dict[tuple[int, int], tuple[tuple[str, ...], str]]:
    """The matched words and the sentence of each (paper, topic line) of the `picked` entries."""
    close = picks.close if len(picks.close) == len(picks.papers) else None
    picked_papers, picked_lines = picks.papers[picked], picks.lines[picked]
    on_line = np.flatnonzero(picked_lines >= 0)
    on_line = on_line[~liked_lines[picked_lines[on_line]]]
    _, first = np.unique(
        picked_papers[on_line] * len(picks.topics) + picked_lines[on_line], return_index=True
    )
    chosen = picked[on_line[first]]
    papers, lines = picks.papers[chosen].tolist(), picks.lines[chosen].tolist()
    topics = [picks.topics[line] for line in lines]
    words = matched_words(index, picks.papers[chosen], topics)
    said_terms, in_titles = words.terms, words.in_title.tolist()
    for i in np.flatnonzero(~words.done).tolist():
        said_terms[i], in_titles[i] = explain(index, papers[i], topics[i])
    meanings = close[chosen].tolist() if close is not None else [False] * len(chosen)
    said = {}
    for paper, line, topic, meaning, terms, in_title in zip(
        papers, lines, topics, meanings, said_terms, in_titles, strict=True
    ):
        if meaning:  # the embedding's cosine made most of the score
            text = f'Close in meaning to your topic "{topic}"'
            text += f" (it says: {', '.join(terms)})" if terms else ""
        else:
            title = " in the title" if in_title else ""
            text = f'Matches your topic "{topic}"{title}: ' + ", ".join(terms)
        said[paper, line] = (terms, text)
    return said


def _reasons(
    index: PaperIndex,
    picks: Picks,
    picked: np.ndarray,
    liked: np.ndarray,
    paper_ids: Sequence[int],
    pinned: list[bool],
) -> list[tuple]:
    """For each of the `picked` entries of picks, the Match fields but its score: (paper id,
    pinned, topic, matched terms, why, liked title)."""
    liked_lines = np.fromiter(map(is_liked_line, picks.topics), dtype=bool, count=len(picks.topics))
    said = _said(index, picks, picked, liked_lines)
    liked_line = liked_lines.tolist()
    reasons = []
    for paper, line, like in zip(
        picks.papers[picked].tolist(),
        picks.lines[picked].tolist(),
        liked[picked].tolist(),
        strict=True,
    ):
        topic, terms, parts = "", (), []
        if line >= 0 and liked_line[line]:
            parts.append("Close in meaning to papers you liked")
        elif line >= 0:
            topic = picks.topics[line]
            terms, text = said[paper, line]
            parts.append(text)
        liked_title = picks.liked_titles[like] if like >= 0 else ""
        if liked_title:
            parts.append(f'{"like" if parts else "Like"} "{liked_title}", which you rated up')
        elif not parts:
            parts.append("Like papers you rated up")
        why = "; ".join(parts)
        if pinned[paper]:
            why = f"Pinned by the editors. {why}"
        reasons.append((paper_ids[paper], pinned[paper], topic, terms, why, liked_title))
    return reasons


@without_cycle_collection
def to_matches(
    index: PaperIndex, picks: Picks, paper_ids: Sequence[int], pinned: Sequence[bool]
) -> list[list[Match]]:
    """Match objects for the picks; one per distinct (paper, topic line, paper it is like,
    score), shared by readers, and its words said once per paper and topic line."""
    if not len(picks.papers):
        return [[] for _ in picks.counts]
    liked = picks.liked if len(picks.liked) == len(picks.papers) else np.full_like(picks.lines, -1)
    reason = (picks.papers * (len(picks.topics) + 1) + picks.lines + 1) * (
        len(picks.liked_titles) + 1
    ) + (liked + 1)
    _, first, reason_of = np.unique(reason, return_index=True, return_inverse=True)
    reasons = _reasons(index, picks, first, liked, paper_ids, np.asarray(pinned, bool).tolist())
    # A reader's profile makes their scores their own: one Match per reason and score.
    reason_of = reason_of.reshape(-1).astype(np.int64)
    score_key = np.rint(picks.scores * 1e4).astype(np.int64)  # scores have 4 decimals
    score_key -= score_key.min()
    if len(reasons) * (int(score_key.max()) + 1) < 2**62:
        keys = reason_of * (int(score_key.max()) + 1) + score_key
    else:
        keys = np.unique(np.column_stack([reason_of, score_key]), axis=0, return_inverse=True)[1]
    _, first, inverse = np.unique(keys.reshape(-1), return_index=True, return_inverse=True)
    made = np.empty(len(first), dtype=object)  # each pick's Match gathered in one take
    made[:] = [
        Match(r[0], score, r[1], r[2], r[3], r[4], r[5])
        for r, score in zip(
            map(reasons.__getitem__, reason_of[first].tolist()),
            picks.scores[first].tolist(),
            strict=True,
        )
    ]
    every = made[inverse.reshape(-1)].tolist()
    ends = np.cumsum(picks.counts).tolist()
    return [every[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)]
