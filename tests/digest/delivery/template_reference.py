"""The digest as today's templates render it, straight, for one reader: no shared blocks, no
frames, every template rendered with the reader's own values. The golden tests compare the
composed digest with this, byte for byte."""

from datetime import date

from django.conf import settings
from django.template.loader import get_template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from config.emails import fit_subject
from digest.delivery.archive import archive_url
from digest.delivery.composing import (
    _authors_text,
    _schedule_text,
    cut_at_sentence,
    highlight,
)
from digest.feedback import ratings
from subscriptions import links


class _Item:
    def __init__(self, html: str, text: str) -> None:
        self.html = mark_safe(html)
        self.text = text


class _Block:
    def __init__(self, head_html: str, head_text: str, excerpt: str) -> None:
        self.head_html = mark_safe(head_html)
        self.head_text = head_text
        self.excerpt = excerpt


def reference_digest(subscriber, matches, *, period: date, papers) -> tuple[str, str, str]:
    items, titles = [], []
    for match in matches:
        if match.paper_id not in papers:
            continue
        paper = papers[match.paper_id]
        titles.append(paper.title)
        entry_links = ratings.entry_links(paper.pk, ratings.rating_token(subscriber, paper.pk))
        head = {
            "title": paper.title,
            "url": entry_links["paper_url"],
            "authors": _authors_text(paper.authors or [], paper.author_count),
            "upvotes": paper.upvotes,
        }
        excerpt = cut_at_sentence(paper.abstract)
        block = _Block(
            get_template("emails/digest-paper.html").render(head).strip(),
            get_template("emails/digest-paper.txt").render(head).strip(),
            excerpt,
        )
        context = {
            "block": block,
            "excerpt_html": highlight(escape(excerpt), match.matched_terms),
            "why": match.why,
            "pinned": match.pinned,
            **entry_links,
        }
        items.append(
            _Item(
                get_template("emails/digest-item.html").render(context),
                get_template("emails/digest-item.txt").render(context),
            )
        )
    top = titles[0] if titles else ""
    more = len(items) - 1
    context = {
        "subscriber": subscriber,
        "items": items,
        "count": len(items),
        "top_title": top,
        "preheader": f"{top}" + (f", and {more} more for you." if more > 0 else "."),
        "period": period,
        "topics": ", ".join(subscriber.topic_lines),
        "schedule": _schedule_text(subscriber),
        "archive_url": archive_url(subscriber, period),
        "preferences_url": links.preferences_url(subscriber),
        "unsubscribe_url": links.unsubscribe_url(subscriber),
        "site_url": settings.SITE_URL,
    }
    return (
        fit_subject(get_template("emails/digest-subject.txt").render(context)),
        get_template("emails/digest-body.txt").render(context),
        get_template("emails/digest-body.html").render(context),
    )
