"""Every email is a subject / text / HTML triple of templates under templates/emails/."""

import functools
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

MAX_SUBJECT_CHARS = 100
ELLIPSIS = "…"


def site_domain() -> str:
    """The public site's host name: the domain of Message-IDs and List-Id."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def fit_subject(subject: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """The subject on one line, at most `limit` characters counting the ellipsis of a cut one
    (cut at a word when one ends in the last fifth)."""
    subject = " ".join(subject.split())
    if len(subject) <= limit:
        return subject
    kept = subject[: limit - len(ELLIPSIS)]
    at_word = kept.rstrip().rsplit(" ", 1)[0] if " " in kept.strip() else kept
    if len(at_word) >= (limit * 4) // 5:
        kept = at_word
    return kept.rstrip(" ,;:-") + ELLIPSIS


def standard_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` plus a Date with a real offset (`+0000`, where Python's default writes the
    "unknown zone" `-0000`) and a Message-ID on the site's domain, unless they are given."""
    given = {name.lower() for name in headers or {}}
    extra = {}
    if "date" not in given:
        extra["Date"] = format_datetime(datetime.now(UTC))
    if "message-id" not in given:
        extra["Message-ID"] = make_msgid(domain=site_domain())
    return {**(headers or {}), **extra}


def render_email(name: str, context: dict) -> tuple[str, str, str]:
    """Render emails/<name>-subject.txt, -body.txt and -body.html."""
    subject = fit_subject(render_to_string(f"emails/{name}-subject.txt", context))
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    return subject, text, html


class Email(EmailMultiAlternatives):
    """A message whose non-ASCII subject parses back exactly as it was written.

    Django encodes such a subject into RFC 2047 encoded words of up to 76 characters without
    counting "Subject: ", so the first word does not fit on the header's first line and the
    compat32 generator moves it to the next, leaving "Subject: " empty: a reader of the message
    then unfolds it with a leading space. Encoded here knowing the header's name, every word fits.
    """

    def message(self, *args, **kwargs):
        subject = self.subject
        if subject.isascii() or "\n" in subject or "\r" in subject:  # Django refuses those
            return super().message(*args, **kwargs)
        self.subject = "-"  # Django would encode the subject too, only to have it replaced
        try:
            mime = super().message(*args, **kwargs)
        finally:
            self.subject = subject
        mime.replace_header("Subject", subject_header(subject))
        return mime


@functools.lru_cache(maxsize=1024)
def subject_header(subject: str) -> str:
    """The Subject header's value, as Email.message sets it (Django's own encoding for ASCII).
    Encoding a non-ASCII one costs more than the rest of a digest's MIME (the standard library
    measures each candidate line again per character), and a day's digests share their
    subjects' papers, so most come from the cache."""
    if subject.isascii():
        return Header(subject).encode()
    return Header(subject, "utf-8", header_name="Subject").encode()


def build_email(
    name: str, to: str, context: dict, *, headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    subject, text, html = render_email(name, context)
    message = Email(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=standard_headers(headers),
    )
    message.attach_alternative(html, "text/html")
    return message


def send_email(
    name: str, to: str, context: dict, *, headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    message = build_email(name, to, context, headers=headers)
    message.send()
    return message
