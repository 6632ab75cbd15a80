"""The digest a reader would get now, before they give an address: the papers of the first
digest's window ranked for the typed topics by the digest's own ranking, each with its "why".

The papers of the window are indexed once per process and kept while they stay the same: one
aggregate query per preview tells whether a paper came, went, was hidden, pinned or re-upvoted,
and an editor's change to a paper's text bumps a version in the shared cache (`forget_papers`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django import forms
from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from digest.delivery.composing import cut_at_sentence
from digest.matching import (
    FIRST_DIGEST_WINDOW,
    Interest,
    PaperIndex,
    parse_topic_lines,
    rank,
    to_matches,
)
from digest.models import Paper
from subscriptions.forms import PreferenceFields, clean_topic_lines
from subscriptions.models import Subscriber

PAPERS_VERSION_KEY = "preview:papers-version"
DEFAULT_LIMIT = Subscriber._meta.get_field("papers_per_digest").default
MAX_LIMIT = 30
MAX_TOPICS_CHARS = PreferenceFields.base_fields["topics"].max_length
EXCERPT_CHARS = 220
SHOWN_AUTHORS = 3
WINDOW_DAYS = FIRST_DIGEST_WINDOW.days
SIGN_UP_FORM_ID = "sign-up"  # the home page's form: the preview's ticks are sent with it


@dataclass(frozen=True)
class PreviewPaper:
    paper_id: int
    title: str
    authors: str
    upvotes: int
    excerpt: str


@dataclass(frozen=True)
class PreviewEntry:
    paper: PreviewPaper
    why: str
    pinned: bool


@dataclass(frozen=True)
class Preview:
    """What the reader typed, understood, and the papers it would bring; `error` says why
    nothing could be previewed (the sign-up form would refuse these topics the same way)."""

    topics: list[str] = field(default_factory=list)
    exclusions: list[str] = field(default_factory=list)
    entries: list[PreviewEntry] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class _Candidates:
    """The window's papers, indexed; immutable once built, shared by the process's threads."""

    fingerprint: tuple
    index: PaperIndex
    papers: list[PreviewPaper]
    upvotes: list[int]
    seen_counts: list[int]
    pinned: list[bool]
    first_seen: list[float]


_built: _Candidates | None = None
_build_lock = threading.Lock()


def forget_papers(**kwargs) -> None:
    """Every process rebuilds its index at its next preview (a paper's text changed)."""
    cache.set(PAPERS_VERSION_KEY, time.time_ns(), timeout=None)


def _window(now: datetime):
    return Paper.objects.filter(
        hidden=False, first_seen__gte=now - FIRST_DIGEST_WINDOW, first_seen__lte=now
    )


def _fingerprint(now: datetime) -> tuple:
    figures = _window(now).aggregate(
        count=Count("id"),
        newest=Max("id"),
        last_seen=Max("last_seen"),
        upvotes=Sum("upvotes"),
        pinned=Count("id", filter=Q(pinned=True)),
    )
    return (*figures.values(), cache.get(PAPERS_VERSION_KEY))


def _authors(authors: Sequence[str]) -> str:
    names = [str(name) for name in authors if name]
    shown = ", ".join(names[:SHOWN_AUTHORS])
    return f"{shown} et al." if len(names) > SHOWN_AUTHORS else shown


def _build(fingerprint: tuple, now: datetime) -> _Candidates:
    rows = list(
        _window(now)
        .order_by("id")
        .values_list(
            "id", "title", "abstract", "authors", "upvotes", "seen_count", "pinned", "first_seen"
        )
    )
    ids, titles, abstracts, authors, upvotes, seen_counts, pinned, first_seen = (
        map(list, zip(*rows, strict=True)) if rows else ([] for _ in range(8))
    )
    papers = [
        PreviewPaper(
            paper_id=paper_id,
            title=title,
            authors=_authors(names or []),
            upvotes=votes,
            excerpt=cut_at_sentence(abstract, EXCERPT_CHARS),
        )
        for paper_id, title, abstract, names, votes in zip(
            ids, titles, abstracts, authors, upvotes, strict=True
        )
    ]
    return _Candidates(
        fingerprint=fingerprint,
        index=PaperIndex.build(titles, abstracts),
        papers=papers,
        upvotes=upvotes,
        seen_counts=seen_counts,
        pinned=pinned,
        first_seen=[moment.timestamp() for moment in first_seen],
    )


def _candidates(now: datetime) -> _Candidates:
    global _built
    fingerprint = _fingerprint(now)
    built = _built
    if built is not None and built.fingerprint == fingerprint:
        return built
    with _build_lock:  # one thread builds; the others wait for it rather than build too
        if _built is None or _built.fingerprint != fingerprint:
            _built = _build(fingerprint, now)
        return _built


def preview_digest(
    topics_text: str, *, limit: int = DEFAULT_LIMIT, now: datetime | None = None
) -> Preview:
    """The papers a first digest for these topic lines would hold now, best first."""
    if not topics_text.strip():
        return Preview()
    if len(topics_text) > MAX_TOPICS_CHARS:
        return Preview(error=f"Keep your topics under {MAX_TOPICS_CHARS:,} characters.")
    try:
        lines = clean_topic_lines(topics_text).splitlines()
    except forms.ValidationError as error:
        return Preview(error=" ".join(error.messages))
    topics, exclusions = parse_topic_lines(lines)
    wanted = [line for line in lines if not line.startswith("-")]
    excluded = [line[1:].strip() for line in lines if line.startswith("-")]
    if not topics:  # only stop words, say: nothing the ranking can look for
        return Preview(wanted, excluded)
    now = now or timezone.now()
    candidates = _candidates(now)
    if not candidates.papers:
        return Preview(wanted, excluded)
    interest = Interest(
        topics, exclusions, max(1, min(limit, MAX_LIMIT)), (now - FIRST_DIGEST_WINDOW).timestamp()
    )
    picks = rank(
        candidates.index,
        [interest],
        upvotes=candidates.upvotes,
        seen_counts=candidates.seen_counts,
        pinned=candidates.pinned,
        first_seen=candidates.first_seen,
    )
    positions = range(len(candidates.papers))
    [matches] = to_matches(candidates.index, picks, positions, candidates.pinned)
    entries = [
        PreviewEntry(candidates.papers[match.paper_id], match.why, match.pinned)
        for match in matches
    ]
    return Preview(wanted, excluded, entries)


def preview_html(
    topics_text: str,
    *,
    limit: int = DEFAULT_LIMIT,
    heading: str = "Your first digest, if you subscribed now",
    no_script_hint: bool = True,
    tickable: bool = True,
) -> SafeString:
    """The preview as the HTML fragment the pages show and the preview endpoint returns; with
    `tickable`, each paper has a "More like this" checkbox (`like`) tied to the sign-up form."""
    preview = preview_digest(topics_text, limit=limit)
    context = {
        "preview": preview,
        "heading": heading,
        "window_days": WINDOW_DAYS,
        "no_script_hint": no_script_hint,
        "tickable": tickable,
        "sign_up_form": SIGN_UP_FORM_ID,
    }
    return mark_safe(render_to_string("pages/_preview.html", context))
