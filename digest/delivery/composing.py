"""Turning a subscriber's ranked papers into a digest email (HTML and plain text).

Most of every digest is the same few papers. What every reader sees the same way (a paper's title,
authors, upvotes and the abstract cut at a sentence boundary, escaped) is a `PaperBlock`; the
entry around it, and the digest around the entries, are rendered once as `Slotted` frames (see
slotted.py). Per email only the reader's parts are made and joined in: the highlighted excerpt,
"why you got this", the signed links, the greeting line and the footer.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from digest.delivery.slotted import Slotted, slot, unsafe_slot
from digest.feedback import ratings
from digest.ingest.latex import LATEX_MARKS, readable_latex, readable_latex_html
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
    """The shared part of a paper's entry, already escaped for HTML; the heads hold a slot for the
    reader's link to the paper's page."""

    paper_id: int
    title: str
    authors: str
    upvotes: int
    excerpt: str
    excerpt_html: str
    head_html: SafeString
    head_text: str
    # The entry frames around the block, by "pinned" (see entry_frames).
    entries: dict[bool, tuple[Slotted, Slotted]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )


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
_frames: dict[tuple[str, date, int, str], Slotted] = {}
# Rendered in a link's place when its parts are cut; never part of a real token (no ":").
_TOKEN_STAND_IN = "0reader0token0"


def _paper_fingerprint(paper: Paper) -> int:
    """Changes when anything the block shows changes (an editor's fix, new upvotes)."""
    authors = tuple(map(str, paper.authors or []))
    return hash((paper.title, paper.abstract, paper.arxiv_id, paper.url, paper.upvotes, authors))


def paper_block(paper: Paper) -> PaperBlock:
    """The paper's shared block, rendered once per process for each version of the paper (so at
    most once a day in a worker), with a slot for the reader's link to the paper's page."""
    key = (paper.pk, _paper_fingerprint(paper), settings.SITE_URL)
    block = _blocks.get(key)
    if block is None:
        if len(_blocks) >= BLOCK_CACHE_SIZE:
            _blocks.clear()
        block = _blocks[key] = _render_block(paper)
    return block


def _render_block(paper: Paper) -> PaperBlock:
    excerpt = cut_at_sentence(paper.abstract)
    context = {
        "title": paper.title,
        # The paper's page, opened as the reader's (with rating buttons): see feedback.ratings.
        "url": unsafe_slot("paper_url"),
        "authors": _authors_text(paper.authors or [], paper.author_count),
        "upvotes": paper.upvotes,
    }
    return PaperBlock(
        paper_id=paper.pk,
        title=paper.title,
        authors=context["authors"],
        upvotes=paper.upvotes,
        excerpt=excerpt,
        excerpt_html=escape(excerpt),
        head_html=mark_safe(get_template("emails/digest-paper.html").render(context).strip()),
        head_text=get_template("emails/digest-paper.txt").render(context).strip(),
    )


def entry_frames(block: PaperBlock, *, pinned: bool) -> tuple[Slotted, Slotted]:
    """The paper's entry (HTML, text) with slots for what is the reader's: the highlighted
    excerpt, "why you got this" and the signed links; rendered once per block."""
    frames = block.entries.get(pinned)
    if frames is None:
        context = {
            "block": block,
            # Through |readable_latex_html: a slot name without LaTeX marks ("_") passes it as it
            # is, and render_digest fills in the excerpt already made readable.
            "excerpt_html": slot("excerpt"),
            "why": unsafe_slot("why"),
            "pinned": pinned,
            "more_url": unsafe_slot("more_url"),
            "less_url": unsafe_slot("less_url"),
        }
        frames = block.entries[pinned] = (
            Slotted.parse(get_template("emails/digest-item.html").render(context)),
            Slotted.parse(get_template("emails/digest-item.txt").render(context)),
        )
    return frames


@lru_cache(maxsize=BLOCK_CACHE_SIZE)
def _link_parts(paper_id: int, site_url: str) -> tuple[tuple[str, str, str], ...]:
    """Each entry link as (name, before the reader's token, after it)."""
    links = ratings.entry_links(paper_id, _TOKEN_STAND_IN)
    return tuple((name, *url.split(_TOKEN_STAND_IN, 1)) for name, url in links.items())


def reader_links(paper_id: int, token: str) -> dict[str, str]:
    """The entry's links with the reader's token: the paper's page, More / Less like this."""
    return {
        name: before + token + after
        for name, before, after in _link_parts(paper_id, settings.SITE_URL)
    }


@lru_cache(maxsize=4096)
def _highlighter(terms: tuple[str, ...]) -> re.Pattern | None:
    # Terms are escaped the same way as the text they are looked for in; the look-behind keeps
    # a match from starting inside an entity such as &amp; or &#x27;.
    words = sorted({escape(term) for term in terms if term.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<![\w&#])({alternatives})(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=BLOCK_CACHE_SIZE)
def _readable_highlighted(escaped_text: str, terms: tuple[str, ...]) -> str:
    """The excerpt as the item template's |readable_latex_html shows it, highlighted."""
    highlighted = highlight(escaped_text, terms)
    # Without LaTeX marks (most excerpts) the filter gives back what it is given.
    return highlighted if LATEX_MARKS.isdisjoint(escaped_text) else readable_latex_html(highlighted)


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


# Each context variable of the digest's frames and the slot it renders as. The frames show
# preheader and top_title through |readable_latex: their slot names hold no LaTeX marks ("_"), so
# the filter passes them as they are, and render_digest fills in values made readable already.
_FRAME_SLOTS = {
    "preheader": "preheader",
    "top_title": "toptitle",
    "topics": "topics",
    "schedule": "schedule",
    "archive_url": "archive_url",
    "preferences_url": "preferences_url",
    "unsubscribe_url": "unsubscribe_url",
    "site_url": "site_url",
}


class _ReaderSlots:
    display_email = unsafe_slot("display_email")


class _ItemSlots:
    def __init__(self, position: int) -> None:
        self.html = slot(f"item{position}")
        self.text = unsafe_slot(f"item{position}")


def digest_frame(template: str, *, period: date, count: int) -> Slotted:
    """The digest's `template` (subject, text or HTML body) for this day and number of papers,
    rendered once, with slots for the reader's parts and for each entry."""
    key = (template, period, count, settings.SITE_URL)
    frame = _frames.get(key)
    if frame is None:
        if len(_frames) >= 1000:
            _frames.clear()
        context = {name: unsafe_slot(slot_name) for name, slot_name in _FRAME_SLOTS.items()}
        context.update(
            subscriber=_ReaderSlots(),
            items=[_ItemSlots(position) for position in range(count)],
            count=count,
            period=period,
        )
        frame = _frames[key] = Slotted.parse(get_template(template).render(context))
    return frame


def render_digest(
    subscriber: Subscriber,
    matches: Sequence[Match],
    *,
    period: date,
    papers: Mapping[int, Paper],
) -> tuple[str, str, str]:
    """Subject, text and HTML: the shared blocks and frames joined around the reader's parts."""
    blocks = [(paper_block(papers[m.paper_id]), m) for m in matches if m.paper_id in papers]
    frame_values: dict[str, str] = {}
    text_values: dict[str, str] = {}
    tokens = ratings.rating_tokens(subscriber, [block.paper_id for block, _ in blocks])
    for position, (block, match) in enumerate(blocks):
        html_entry, text_entry = entry_frames(block, pinned=match.pinned)
        values = reader_links(block.paper_id, tokens[block.paper_id])
        values["why"] = match.why
        values["excerpt"] = _readable_highlighted(block.excerpt_html, match.matched_terms)
        frame_values[f"item{position}"] = html_entry.fill(values)
        text_values[f"item{position}"] = text_entry.fill(values)
    top = blocks[0][0].title if blocks else ""
    more = len(blocks) - 1
    reader_values = {
        "preheader": readable_latex(
            f"{top}" + (f", and {more} more for you." if more > 0 else ".")
        ),
        "toptitle": readable_latex(top),
        "topics": ", ".join(subscriber.topic_lines),
        "schedule": _schedule_text(subscriber),
        "archive_url": archive_url(subscriber, period),
        "preferences_url": links.preferences_url(subscriber),
        "unsubscribe_url": links.unsubscribe_url(subscriber),
        "site_url": settings.SITE_URL,
        "display_email": subscriber.display_email,
    }
    frame_values.update(reader_values)
    text_values.update(reader_values)
    count = len(blocks)
    subject = digest_frame("emails/digest-subject.txt", period=period, count=count)
    text = digest_frame("emails/digest-body.txt", period=period, count=count)
    html = digest_frame("emails/digest-body.html", period=period, count=count)
    return fit_subject(subject.fill(reader_values)), text.fill(text_values), html.fill(frame_values)


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
    subject, text, html = render_digest(
        subscriber,
        matches,
        period=period,
        papers=_load_papers(matches) if papers is None else papers,
    )
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
