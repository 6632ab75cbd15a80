"""arXiv feeds through feedparser: RSS 2.0 (with arxiv:announce_type), the older RSS 1.0/RDF
listing, and arXiv API Atom results; from bytes, or from a URL with a conditional request."""

import html
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import feedparser
from django.utils import timezone
from django.utils.html import strip_tags

from digest.ingest.records import (
    URL_MAX_CHARS,
    PaperRecord,
    Rejection,
    clean_text,
    clean_title,
)
from digest.models import FeedState

USER_AGENT = "Paperboy/0.1 (+https://github.com/paperboy; daily research digest)"
FETCH_TIMEOUT_SECONDS = 60.0


class _TimeoutHTTPHandler(urllib.request.HTTPHandler):
    """feedparser has no timeout; without one a silent server would hold the daily run."""

    def http_open(self, request: urllib.request.Request):
        request.timeout = FETCH_TIMEOUT_SECONDS
        return super().http_open(request)


class _TimeoutHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, request: urllib.request.Request):
        request.timeout = FETCH_TIMEOUT_SECONDS
        return super().https_open(request)


_ARXIV_ID = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf)/|arXiv:|oai:arXiv\.org:)"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?",
    re.IGNORECASE,
)
_ANNOUNCE_PREFIX = re.compile(r"^arXiv:\S+\s+Announce Type:\s*\S+\s*", re.IGNORECASE)
_ABSTRACT_PREFIX = re.compile(r"^Abstract:\s*", re.IGNORECASE)
_RSS1_TITLE_SUFFIX = re.compile(r"\.?\s*\(arXiv:\S+\s*(?:\[(?P<category>[^\]]+)\])?[^()]*\)\s*$")


class FeedError(Exception):
    """The feed could not be read at all."""


@dataclass
class FetchedFeed:
    parsed: feedparser.FeedParserDict | None  # None: not modified since the last poll
    etag: str = ""
    last_modified: str = ""


def fetch_feed(url: str) -> FetchedFeed:
    """One conditional GET with the ETag and Last-Modified the feed answered last time."""
    state = FeedState.objects.filter(url=url).first()
    try:
        parsed = feedparser.parse(
            url,
            etag=(state.etag or None) if state else None,
            modified=(state.last_modified or None) if state else None,
            agent=USER_AGENT,
            handlers=[_TimeoutHTTPHandler(), _TimeoutHTTPSHandler()],
        )
    except OSError as error:  # timeouts; feedparser turns most other failures into bozo
        raise FeedError(f"cannot fetch {url}: {error}") from error
    except Exception as error:  # a feedparser bug on some answer (see parse_feed_bytes)
        raise FeedError(f"feedparser failed on {url}: {type(error).__name__}: {error}") from error
    status = parsed.get("status")
    if status is None:
        raise FeedError(f"cannot fetch {url}: {parsed.get('bozo_exception', 'no answer')}")
    if status == 304:
        return FetchedFeed(parsed=None)
    if status >= 400:
        raise FeedError(f"{url} answered HTTP {status}")
    return FetchedFeed(
        parsed, etag=parsed.get("etag", ""), last_modified=parsed.get("modified", "")
    )


def remember_feed(url: str, fetched: FetchedFeed) -> None:
    """Store the validators once the feed's papers are safely in."""
    if fetched.parsed is None:
        FeedState.objects.filter(url=url).update(checked_at=timezone.now())
        return
    FeedState.objects.update_or_create(
        url=url, defaults={"etag": fetched.etag, "last_modified": fetched.last_modified}
    )


# A character reference to half of a UTF-16 pair ("&#xD800;") makes feedparser raise
# UnicodeEncodeError instead of reporting the feed malformed: it becomes U+FFFD first.
_SURROGATE_REFERENCE = re.compile(rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*5[5-7]\d{3});")


def parse_feed_bytes(data: bytes) -> feedparser.FeedParserDict:
    data = _SURROGATE_REFERENCE.sub(_replace_surrogate_reference, data)
    try:
        return feedparser.parse(data)
    except Exception as error:  # a feedparser bug on some input: the feed cannot be read
        raise FeedError(f"feedparser failed: {type(error).__name__}: {error}") from error


def _replace_surrogate_reference(match: re.Match) -> bytes:
    reference = match[0][2:-1]
    code = int(reference[1:], 16) if reference[:1] in (b"x", b"X") else int(reference)
    return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF else match[0]


def parse_feed(parsed: feedparser.FeedParserDict) -> Iterator[PaperRecord | Rejection]:
    """Paper records from a parsed feed; a feed that is not well-formed fails unless feedparser
    recovered entries from it, which are kept, with one rejection saying what was wrong."""
    if parsed.get("bozo") and not parsed.entries:
        raise FeedError(f"not a well-formed feed: {parsed.get('bozo_exception')}")
    if parsed.get("bozo"):
        yield Rejection(
            "feed", f"not well-formed, entries recovered: {parsed.get('bozo_exception')}"
        )
    feed_date = _date(parsed.feed, "updated_parsed", "published_parsed")
    for number, entry in enumerate(parsed.entries, start=1):
        where = f"entry {number}"
        title, category = _title(entry.get("title", ""))
        if not title:
            yield Rejection(where, "entry without a title")
            continue
        arxiv_id, version = _arxiv_id(entry)
        authors = _authors(entry)
        categories = [clean_text(tag.get("term") or "") for tag in entry.get("tags", [])]
        categories = [category for category in categories if category]
        primary = entry.get("arxiv_primary_category", {}).get("term")
        for extra in (primary, category):
            if extra and extra not in categories:
                categories.insert(0, extra)
        yield PaperRecord(
            title=title,
            abstract=_abstract(entry.get("summary", "")),
            where=where,
            authors=authors,
            author_count=len(authors) or None,
            arxiv_id=arxiv_id,
            arxiv_version=version,
            url=_link(entry, arxiv_id),
            pdf_url=_pdf_link(entry, arxiv_id),
            published_on=_date(entry, "published_parsed", "updated_parsed") or feed_date,
            categories=categories,
        )


def _plain(text: str) -> str:
    return clean_text(html.unescape(strip_tags(text)))


def _title(raw: str) -> tuple[str, str | None]:
    """The plain title, without the RSS 1.0 "(arXiv:2401.12345v1 [cs.LG])" suffix."""
    title = _plain(raw)
    match = _RSS1_TITLE_SUFFIX.search(title)
    if match and match.start() > 0:
        return clean_title(title[: match.start()]), match["category"]
    return clean_title(title), None


def _abstract(raw: str) -> str:
    text = _plain(raw)
    text = _ANNOUNCE_PREFIX.sub("", text)
    return _ABSTRACT_PREFIX.sub("", text)


def _arxiv_id(entry: feedparser.FeedParserDict) -> tuple[str | None, int | None]:
    """The id, and the version when any of the places it appears in gives one."""
    places = ("id", "title", "link", "summary")
    matches = [_ARXIV_ID.search(entry.get(place) or "") for place in places]
    matches = [match for match in matches if match]
    if not matches:
        return None, None
    arxiv_id = matches[0]["id"]
    versions = [
        int(match["version"]) for match in matches if match["id"] == arxiv_id and match["version"]
    ]
    return arxiv_id, versions[0] if versions else None


def _authors(entry: feedparser.FeedParserDict) -> list[str]:
    names = [_plain(author.get("name", "")) for author in entry.get("authors", [])]
    if len(names) == 1:  # RSS puts every author in one dc:creator
        names = re.split(r",\s*|\s+and\s+", names[0])
    return [name for name in (name.strip() for name in names) if name]


def _link(entry: feedparser.FeedParserDict, arxiv_id: str | None) -> str:
    if arxiv_id:
        return f"https://arxiv.org/abs/{arxiv_id}"
    link = entry.get("link", "")
    return link if link.startswith(("http://", "https://")) and len(link) <= URL_MAX_CHARS else ""


def _pdf_link(entry: feedparser.FeedParserDict, arxiv_id: str | None) -> str:
    for link in entry.get("links", []):
        is_pdf = link.get("title") == "pdf" or link.get("type") == "application/pdf"
        if is_pdf and len(link.get("href", "")) <= URL_MAX_CHARS:
            return link.get("href", "")
    return f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else ""


def _date(source: feedparser.FeedParserDict, *keys: str) -> date | None:
    for key in keys:
        value = dict.get(source, key)  # no feedparser fallback mapping (and its warning)
        if value:
            return date(*value[:3])
    return None
