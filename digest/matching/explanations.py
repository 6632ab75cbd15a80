"""The explanation of each match: which topic, and the paper's own words that matched it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.matching.allocation import without_cycle_collection
from digest.matching.paper_index import PaperIndex
from digest.matching.ranking import Picks
from digest.matching.text import END, SEGMENT, START, STEM, contains_phrase, topic_stems

MAX_MATCHED_TERMS = 6


@dataclass(frozen=True)
class Match:
    paper_id: int
    score: float
    pinned: bool
    topic: str
    matched_terms: tuple[str, ...]
    why: str
    liked_title: str = ""  # the paper rated up it is like, when the reader's profile chose it


def _positions(index: PaperIndex, paper: int) -> tuple[dict[str, list[int]], ...]:
    """Where each stem occurs in the paper's title and abstract tokens."""
    if paper not in index.positions:
        maps = []
        for tokens in index.tokens[paper]:
            where: dict[str, list[int]] = {}
            for i, token in enumerate(tokens):
                where.setdefault(token[STEM], []).append(i)
            maps.append(where)
        index.positions[paper] = tuple(maps)
    return index.positions[paper]


def explain(index: PaperIndex, paper: int, topic: str) -> tuple[tuple[str, ...], bool]:
    """(the paper's own words that matched the topic, whether the title holds the whole topic)."""
    stems = topic_stems(topic)
    own = set(stems)
    long_forms = []
    for acronym, long_form in index.acronyms[paper].items():
        if acronym in own:
            long_forms.append(long_form)
        elif contains_phrase(stems, long_form):
            own.add(acronym)
    wanted = own.union(*long_forms)
    surfaces: dict[tuple[str, ...], str | None] = {}  # first surface of each run of stems
    in_title: set[str] = set()  # stems of the title's matching runs
    texts = (index.titles[paper], index.abstracts[paper])
    fields = zip(index.tokens[paper], _positions(index, paper), strict=True)
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
            if own.intersection(run_stems) or any(
                contains_phrase(run_stems, f) for f in long_forms
            ):
                surfaces[run_stems] = texts[number][tokens[run[0]][START] : tokens[run[-1]][END]]
                if number == 0:
                    in_title.update(run_stems)
    # Longest first; a word already inside a listed phrase ("experts" after "Mixture of
    # Experts") or another form of a listed word ("MoEs" after "MoE") adds nothing.
    terms: list[str] = []
    kept: list[frozenset[str]] = []
    for run_stems in sorted(surfaces, key=len, reverse=True):
        if (surface := surfaces[run_stems]) and not any(kept_ >= set(run_stems) for kept_ in kept):
            kept.append(frozenset(run_stems))
            terms.append(surface)
    # "In the title" only when the title alone says every word of the topic (an acronym standing
    # for its long form): "Foundation Model" is not "diffusion models".
    for acronym, long_form in index.acronyms[paper].items():
        if acronym in in_title:
            in_title.update(long_form)
        elif in_title.issuperset(long_form):
            in_title.add(acronym)
    return tuple(terms[:MAX_MATCHED_TERMS]), in_title.issuperset(stems)


@without_cycle_collection
def to_matches(
    index: PaperIndex, picks: Picks, paper_ids: Sequence[int], pinned: Sequence[bool]
) -> list[list[Match]]:
    """Match objects for the picks; one per distinct (paper, topic line, paper it is like,
    score), shared by readers."""
    if not len(picks.papers):
        return [[] for _ in picks.counts]
    liked = picks.liked if len(picks.liked) == len(picks.papers) else np.full_like(picks.lines, -1)
    pair = (picks.papers * (len(picks.topics) + 1) + picks.lines + 1) * (
        len(picks.liked_titles) + 1
    ) + (liked + 1)
    if (liked >= 0).any() or len(picks.liked_titles):  # a profile makes scores the reader's own
        score_key = np.rint(picks.scores * 1e4).astype(np.int64)  # scores have 4 decimals
        if pair.max() < 2**44 and score_key.max() < 2**18 and score_key.min() >= 0:
            keys = pair * 2**18 + score_key
        else:
            keys = np.unique(np.column_stack([pair, score_key]), axis=0, return_inverse=True)[1]
        _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    pinned = np.asarray(pinned, dtype=bool).tolist()
    made = []
    said: dict[
        tuple[int, int], tuple[tuple[str, ...], str]
    ] = {}  # a paper's words for a topic line, said once
    for paper, line, like, score in zip(
        picks.papers[first].tolist(),
        picks.lines[first].tolist(),
        liked[first].tolist(),
        picks.scores[first].tolist(),
        strict=True,
    ):
        topic, terms, parts = "", (), []
        if line >= 0:
            topic = picks.topics[line]
            if (paper, line) not in said:
                terms, in_title = explain(index, paper, topic)
                title = " in the title" if in_title else ""
                said[paper, line] = (
                    terms,
                    f'Matches your topic "{topic}"{title}: ' + ", ".join(terms),
                )
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
        made.append(Match(paper_ids[paper], score, pinned[paper], topic, terms, why, liked_title))
    every = list(map(made.__getitem__, inverse.reshape(-1).tolist()))
    ends = np.cumsum(picks.counts).tolist()
    return [every[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)]
