"""Turning a subscriber's ranked papers into a digest email (HTML and plain text).

What every reader sees the same way (a paper's title, link, authors, upvotes and the abstract cut
at a sentence boundary, escaped) is a `PaperBlock`, built once per paper and process and reused for
every email in the run. The entry a reader sees (the block with the matched words highlighted and
"why you got this") is a `DigestItem`, rendered once per paper and reason: readers who share a
topic share it. Per email only the list, the header and footer, and the signed links are new: a
shared rendering is kept as the parts around its token slot (feedback.ratings.token_slot) and
joined with each reader's token, never searched and replaced.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import get_template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from config.emails import Email, fit_subject, site_domain, standard_headers
from digest.delivery.archive import archive_url
from digest.delivery.periods import subscriber_zone
from digest.feedback import ratings
from digest.matching import Match, select_papers
from digest.models import Delivery, Paper
from subscriptions import links
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

EXCERPT_CHARS = 320
MAX_AUTHORS = 6
BLOCK_CACHE_SIZE = 20_000
MARK_STYLE = "background-color:#fff3b0;color:#1f2328;padding:0 2px;border-radius:2px;"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


@dataclass(frozen=True)
class PaperBlock:
    """The shared part of a paper's entry, already escaped for HTML."""

    paper_id: int
    title: str
    url: str
    authors: str
    upvotes: int
    excerpt: str
    excerpt_html: str
    head_html: SafeString
    head_text: str
    token_slot: str  # in url, head_html and head_text, where the reader's token goes


@dataclass(frozen=True)
class DigestItem:
    """One paper's entry, rendered; shared by every reader who got the paper for the same reason
    (the same matched words and "why"), as the parts around where the reader's token goes."""

    html_parts: tuple[str, ...]
    text_parts: tuple[str, ...]
    paper_id: int


@dataclass(frozen=True)
class ReaderItem:
    """One paper's entry as a reader sees it, with their signed links."""

    html: SafeString
    text: str
    paper_id: int


def paper_url(paper: Paper) -> str:
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    return paper.url or paper.pdf_url or ""


def cut_at_sentence(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Whole sentences up to about `limit` characters; one over-long sentence is cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    excerpt = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{excerpt} {sentence}".strip()
        if excerpt and len(candidate) > limit:
            break
        excerpt = candidate
        if len(excerpt) > limit:
            break
    if len(excerpt) > limit * 1.5:
        excerpt = excerpt[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return excerpt


def _authors_text(authors: Sequence[str], author_count: int | None) -> str:
    names = [str(name) for name in authors if name]
    total = max(author_count or 0, len(names))
    if not names:
        return f"{total} authors" if total > 1 else ""
    if total > MAX_AUTHORS or total > len(names):
        shown = names[:MAX_AUTHORS]
        return ", ".join(shown) + f" and {total - len(shown)} more"
    return ", ".join(names)


_blocks: dict[tuple[int, int, str], PaperBlock] = {}
_items: dict[tuple[PaperBlock, tuple[str, ...], str, bool], DigestItem] = {}


def _paper_fingerprint(paper: Paper) -> int:
    """Changes when anything the block shows changes (an editor's fix, new upvotes)."""
    authors = tuple(map(str, paper.authors or []))
    return hash((paper.title, paper.abstract, paper.arxiv_id, paper.url, paper.upvotes, authors))


def paper_block(paper: Paper) -> PaperBlock:
    """The paper's shared block, rendered once per process for each version of the paper."""
    key = (paper.pk, _paper_fingerprint(paper), settings.SITE_URL)
    block = _blocks.get(key)
    if block is None:
        if len(_blocks) >= BLOCK_CACHE_SIZE:
            _blocks.clear()
        block = _blocks[key] = _render_block(paper)
    return block


def _render_block(paper: Paper) -> PaperBlock:
    excerpt = cut_at_sentence(paper.abstract)
    authors = _authors_text(paper.authors or [], paper.author_count)
    slot = ratings.token_slot(paper.title, authors, settings.SITE_URL)
    context = {
        "title": paper.title,
        # The paper's page, opened as the reader's (with rating buttons): see feedback.ratings.
        "url": ratings.entry_links(paper.pk, slot)["paper_url"],
        "authors": authors,
        "upvotes": paper.upvotes,
    }
    return PaperBlock(
        paper_id=paper.pk,
        title=paper.title,
        url=context["url"],
        authors=context["authors"],
        upvotes=paper.upvotes,
        excerpt=excerpt,
        excerpt_html=escape(excerpt),
        head_html=mark_safe(get_template("emails/digest-paper.html").render(context).strip()),
        head_text=get_template("emails/digest-paper.txt").render(context).strip(),
        token_slot=slot,
    )


def digest_item(block: PaperBlock, match: Match) -> DigestItem:
    """The paper's entry for this match, rendered once per process for each distinct reason."""
    key = (block, match.matched_terms, match.why, match.pinned)
    item = _items.get(key)
    if item is None:
        if len(_items) >= BLOCK_CACHE_SIZE:
            _items.clear()
        # A slot of its own, checked against this entry's texts too (the topic's words, "why").
        slot = ratings.token_slot(
            block.title, block.authors, block.excerpt, match.why, *match.matched_terms
        )
        head = replace(
            block,
            head_html=mark_safe(slot.join(block.head_html.split(block.token_slot))),
            head_text=slot.join(block.head_text.split(block.token_slot)),
        )
        context = {
            "block": head,
            "excerpt_html": highlight(block.excerpt_html, match.matched_terms),
            "why": match.why,
            "pinned": match.pinned,
            **ratings.entry_links(block.paper_id, slot),
        }
        item = _items[key] = DigestItem(
            html_parts=tuple(get_template("emails/digest-item.html").render(context).split(slot)),
            text_parts=tuple(get_template("emails/digest-item.txt").render(context).split(slot)),
            paper_id=block.paper_id,
        )
    return item


def reader_item(subscriber: Subscriber, item: DigestItem) -> ReaderItem:
    """The shared entry with this reader's signed links (paper page, More / Less like this)."""
    token = ratings.rating_token(subscriber, item.paper_id)
    return ReaderItem(
        html=mark_safe(ratings.for_reader(item.html_parts, token)),
        text=ratings.for_reader(item.text_parts, token),
        paper_id=item.paper_id,
    )


@lru_cache(maxsize=4096)
def _highlighter(terms: tuple[str, ...]) -> re.Pattern | None:
    # Terms are escaped the same way as the text they are looked for in; the look-behind keeps
    # a match from starting inside an entity such as &amp; or &#x27;.
    words = sorted({escape(term) for term in terms if term.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<![\w&#])({alternatives})(?!\w)", re.IGNORECASE)


def highlight(escaped_text: str, terms: Sequence[str]) -> SafeString:
    """Wrap the matched words of already-escaped text in <mark>."""
    pattern = _highlighter(tuple(terms))
    if pattern is None:
        return mark_safe(escaped_text)
    return mark_safe(pattern.sub(rf'<mark style="{MARK_STYLE}">\1</mark>', escaped_text))


def list_id_domain() -> str:
    return site_domain()


def digest_headers(subscriber: Subscriber) -> dict[str, str]:
    unsubscribe = [f"<{links.one_click_unsubscribe_url(subscriber)}>"]
    if settings.LIST_UNSUBSCRIBE_MAILTO:
        unsubscribe.append(f"<mailto:{settings.LIST_UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(unsubscribe),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"Paperboy digest <digest.{list_id_domain()}>",
    }


def _schedule_text(subscriber: Subscriber) -> str:
    hour = f"{subscriber.send_hour:02d}:00 {subscriber.time_zone}"
    if subscriber.frequency == Subscriber.Frequency.WEEKLY:
        return f"every {subscriber.get_weekday_display()} at {hour}"
    return f"every day at {hour}"


def digest_context(
    subscriber: Subscriber,
    matches: Sequence[Match],
    *,
    period: date,
    papers: Mapping[int, Paper],
) -> dict:
    blocks = [(paper_block(papers[m.paper_id]), m) for m in matches if m.paper_id in papers]
    items = [reader_item(subscriber, digest_item(block, match)) for block, match in blocks]
    topics = subscriber.topic_lines
    top = blocks[0][0].title if blocks else ""
    more = len(items) - 1
    preheader = f"{top}" + (f", and {more} more for you." if more > 0 else ".")
    return {
        "subscriber": subscriber,
        "items": items,
        "count": len(items),
        "top_title": top,
        "preheader": preheader,
        "period": period,
        "topics": ", ".join(topics),
        "schedule": _schedule_text(subscriber),
        "archive_url": archive_url(subscriber, period),
        "preferences_url": links.preferences_url(subscriber),
        "unsubscribe_url": links.unsubscribe_url(subscriber),
        "site_url": settings.SITE_URL,
    }


def render_digest(context: dict) -> tuple[str, str, str]:
    subject = fit_subject(get_template("emails/digest-subject.txt").render(context))
    text = get_template("emails/digest-body.txt").render(context)
    html = get_template("emails/digest-body.html").render(context)
    return subject, text, html


def _load_papers(matches: Sequence[Match]) -> dict[int, Paper]:
    return Paper.objects.in_bulk([match.paper_id for match in matches])


def compose_digest(
    subscriber: Subscriber,
    matches: Sequence[Match],
    *,
    period: date,
    papers: Mapping[int, Paper] | None = None,
    message_id: str | None = None,
) -> EmailMultiAlternatives:
    """The digest email for `matches` (best first); `papers` by id saves a query when the caller
    has them already."""
    context = digest_context(
        subscriber,
        matches,
        period=period,
        papers=_load_papers(matches) if papers is None else papers,
    )
    subject, text, html = render_digest(context)
    headers = digest_headers(subscriber)
    if message_id:
        headers["Message-ID"] = message_id
    message = Email(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers=standard_headers(headers),
    )
    message.attach_alternative(html, "text/html")
    return message


def preview_digest(
    subscriber: Subscriber, *, now: datetime | None = None
) -> EmailMultiAlternatives | None:
    """The digest `subscriber` would get now, without recording anything; None: nothing relevant."""
    now = now or timezone.now()
    matches = select_papers([subscriber], now=now).get(subscriber.pk, [])
    if not matches:
        return None
    local_date = now.astimezone(subscriber_zone(subscriber)).date()
    return compose_digest(subscriber, matches, period=local_date)


@dataclass(frozen=True)
class EditorPreview:
    """What an editor sees on a subscriber's preview page: the digest they would get now (None:
    nothing relevant, or it failed, then `error` says why) and today's delivery, if any."""

    message: EmailMultiAlternatives | None
    error: str
    today: Delivery | None
    today_titles: list[str]


def editor_preview(subscriber: Subscriber, *, now: datetime | None = None) -> EditorPreview:
    """The preview, and whether the reader already had their digest for today (their local
    date): then the papers it held are not offered again, and that is why nothing may be left."""
    now = now or timezone.now()
    local_date = now.astimezone(subscriber_zone(subscriber)).date()
    today = Delivery.objects.filter(subscriber=subscriber, period=local_date).first()
    titles = (
        list(today.items.order_by("position").values_list("paper__title", flat=True))
        if today
        else []
    )
    try:
        matches = select_papers([subscriber], now=now).get(subscriber.pk, [])
    except Exception as error:
        logger.exception("ranking papers for the preview of subscriber %s failed", subscriber.pk)
        return EditorPreview(
            None, f"ranking failed: {type(error).__name__}: {error}", today, titles
        )
    try:
        message = compose_digest(subscriber, matches, period=local_date) if matches else None
    except Exception as error:
        logger.exception("composing the preview of subscriber %s failed", subscriber.pk)
        return EditorPreview(
            None, f"composing failed: {type(error).__name__}: {error}", today, titles
        )
    return EditorPreview(message, "", today, titles)
