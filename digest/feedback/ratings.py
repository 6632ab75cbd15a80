"""Readers rating papers: the signed "More like this" / "Less like this" links of a digest entry,
recording and undoing a rating, and the papers a reader pastes to seed their profile.

A rating link names the reader and the paper and carries a fragment of an HMAC of the address
(keyed by SECRET_KEY), like subscriptions.links: nothing is stored to make one, it needs no login,
it cannot be guessed, and it does not tell whose address it is. Links made before the HMAC carry
a plain sha256 fragment and still work, as do the zlib-compressed tokens signed before.
It opens a page with one button; only the POST of that button records anything, since mail link
scanners follow every link of a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.core import signing
from django.db import transaction
from django.urls import reverse

from digest.ingest.records import title_key
from digest.models import Paper, Rating
from subscriptions.links import Signer, absolute_url, address_fingerprint, address_matches
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)
SALT = "paperboy.digest.feedback.ratings"
MAX_SEED_LINES = 50
MAX_SEED_LINE_CHARS = 500
DIRECTIONS = {"more": Rating.Value.MORE, "less": Rating.Value.LESS}

# "2401.00001", "arXiv:2401.00001v2", or any link ending in the id (abs, pdf, a listing's page).
ARXIV_ID = re.compile(r"(?:\S*/|arxiv:\s*)?(\d{4}\.\d{4,5})(?:v\d+)?(?:\.pdf)?/?", re.IGNORECASE)


class InvalidRatingLink(Exception):
    pass


def rating_token(subscriber: Subscriber, paper_id: int) -> str:
    return rating_tokens(subscriber, [paper_id])[paper_id]


def rating_tokens(subscriber: Subscriber, paper_ids: Sequence[int]) -> dict[int, str]:
    """The reader's token for each paper (a digest's entries), signed by one signer."""
    signer, fingerprint = Signer(salt=SALT), address_fingerprint(subscriber.email)
    return {
        paper_id: signer.sign_object([subscriber.pk, paper_id, fingerprint])
        for paper_id in paper_ids
    }


def read_rating_token(token: str, paper_id: int) -> Subscriber:
    """The reader the token was made for, if it was made for this paper; InvalidRatingLink
    otherwise (tampered, another paper's, or the reader is gone)."""
    try:
        subscriber_id, signed_paper_id, fingerprint = Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise InvalidRatingLink("tampered") from error
    if signed_paper_id != paper_id:
        raise InvalidRatingLink("another paper's link")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or not address_matches(subscriber.email, fingerprint):
        raise InvalidRatingLink("gone")
    return subscriber


def paper_page_path(paper_id: int, token: str | None = None) -> str:
    if token is None:
        return reverse("digest:paper", kwargs={"paper_id": paper_id})
    return reverse("digest:paper_for_reader", kwargs={"paper_id": paper_id, "token": token})


def rate_path(paper_id: int, direction: str, token: str) -> str:
    return reverse(
        "digest:rate", kwargs={"paper_id": paper_id, "direction": direction, "token": token}
    )


def entry_links(paper_id: int, token: str) -> dict[str, str]:
    """A digest entry's links for the reader of `token`."""
    return {
        "paper_url": absolute_url(paper_page_path(paper_id, token)),
        "more_url": absolute_url(rate_path(paper_id, "more", token)),
        "less_url": absolute_url(rate_path(paper_id, "less", token)),
    }


def rate(
    subscriber: Subscriber,
    paper: Paper,
    value: int,
    *,
    source: str = Rating.Source.EMAIL,
) -> Rating:
    """Record the reader's rating of the paper (replacing an earlier one). The caller has the
    reader's profile relearned after commit (tasks.relearn_after_commit)."""
    rating, _ = Rating.objects.update_or_create(
        subscriber=subscriber, paper=paper, defaults={"value": value, "source": source}
    )
    return rating


def undo_rating(subscriber: Subscriber, paper_id: int) -> bool:
    deleted, _ = Rating.objects.filter(subscriber=subscriber, paper_id=paper_id).delete()
    return bool(deleted)


def ratings_of(subscriber: Subscriber) -> list[Rating]:
    """The reader's ratings, latest first, of the papers still shown (an editor may hide one)."""
    return list(
        Rating.objects.filter(subscriber=subscriber, paper__hidden=False)
        .select_related("paper")
        .only("value", "source", "rated_at", "paper__title", "paper__arxiv_id")
        .order_by("-rated_at")
    )


def rating_of(subscriber: Subscriber, paper_id: int) -> Rating | None:
    return Rating.objects.filter(subscriber=subscriber, paper_id=paper_id).first()


# --- seeds: "Papers like these" ------------------------------------------------------------------


@dataclass(frozen=True)
class SeedLine:
    """One line of the box: an arXiv id, or else a title."""

    text: str
    arxiv_id: str | None


@dataclass
class Seeding:
    rated: list[Paper] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    ignored: int = 0  # lines past MAX_SEED_LINES


def parse_seed_lines(text: str) -> tuple[list[SeedLine], int]:
    """(the box's lines as arXiv ids or titles, how many lines past the limit were left out).
    Blank lines are skipped; a line is cut at MAX_SEED_LINE_CHARS characters."""
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())[:MAX_SEED_LINE_CHARS]
        if not line:
            continue
        found = ARXIV_ID.fullmatch(line)
        lines.append(SeedLine(line, found.group(1) if found else None))
    return lines[:MAX_SEED_LINES], max(len(lines) - MAX_SEED_LINES, 0)


def find_seed_papers(lines: Iterable[SeedLine]) -> dict[SeedLine, Paper]:
    """The visible papers the lines name, by arXiv id or by title (two queries)."""
    lines = list(lines)
    ids = {line.arxiv_id for line in lines if line.arxiv_id}
    keys = {title_key(line.text) for line in lines if not line.arxiv_id}
    keys.discard("")
    by_id = {p.arxiv_id: p for p in Paper.objects.filter(hidden=False, arxiv_id__in=ids)}
    by_key = {p.title_key: p for p in Paper.objects.filter(hidden=False, title_key__in=keys)}
    found = {}
    for line in lines:
        paper = by_id.get(line.arxiv_id) if line.arxiv_id else by_key.get(title_key(line.text))
        if paper is not None:
            found[line] = paper
    return found


def seed_profile(subscriber: Subscriber, text: str) -> Seeding:
    """Rate up every paper the box names; say which lines named nothing we know."""
    lines, ignored = parse_seed_lines(text)
    found = find_seed_papers(lines)
    seeding = Seeding(ignored=ignored)
    with transaction.atomic():
        for line in lines:
            paper = found.get(line)
            if paper is None:
                seeding.not_found.append(line.text)
            elif paper not in seeding.rated:
                Rating.objects.update_or_create(
                    subscriber=subscriber,
                    paper=paper,
                    defaults={"value": Rating.Value.MORE, "source": Rating.Source.SEED},
                )
                seeding.rated.append(paper)
    return seeding
