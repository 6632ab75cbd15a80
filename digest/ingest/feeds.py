"""arXiv feeds through feedparser: RSS 2.0 (with arxiv:announce_type), the older RSS 1.0/RDF
listing, and arXiv API Atom results, from bytes (`fetching` gets them from a URL)."""

import html
import io
import re
from collections.abc import Iterator
from datetime import date

import feedparser
from django.utils.html import strip_tags

from digest.ingest.records import (
    CATEGORIES_MAX,
    RAW_FIELD_MAX_CHARS,
    URL_MAX_CHARS,
    PaperRecord,
    Rejection,
    bound_record,
    clean_text,
    raw_field,
    safe_http_url,
)

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


# A character reference to half of a UTF-16 pair ("&#xD800;") makes feedparser raise
# UnicodeEncodeError instead of reporting the feed malformed: it becomes U+FFFD first.
_SURROGATE_REFERENCE = re.compile(rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*5[5-7]\d{3});")


def parse_feed_bytes(data: bytes, content_type: str = "") -> feedparser.FeedParserDict:
    """The parsed feed; `content_type`, when it came over http, may name the charset."""
    data = _SURROGATE_REFERENCE.sub(_replace_surrogate_reference, data)
    headers = {"content-type": content_type} if content_type else None
    try:
        # As a stream: given bytes, feedparser first tries them as a file name to open, so a
        # source answering "/etc/passwd" would have it read that file.
        return feedparser.parse(io.BytesIO(data), response_headers=headers)
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
        cuts: set[str] = set()
        title, category = _title(raw_field(entry.get("title") or "", cuts, "title"))
        if not title:
            yield Rejection(where, "entry without a title")
            continue
        arxiv_id, version = _arxiv_id(entry)
        authors = _authors(entry, cuts)
        tags = entry.get("tags") or []
        if len(tags) > CATEGORIES_MAX:
            tags = tags[:CATEGORIES_MAX]
            cuts.add("categories")
        categories = [_plain_field(tag.get("term"), cuts, "categories") for tag in tags]
        categories = [category for category in categories if category]
        primary_category = (entry.get("arxiv_primary_category") or {}).get("term")
        primary = _plain_field(primary_category, cuts, "categories")
        for extra in (primary, category):
            if extra and extra not in categories:
                categories.insert(0, extra)
        yield bound_record(
            PaperRecord(
                title=title,
                abstract=_abstract(raw_field(entry.get("summary") or "", cuts, "abstract")),
                where=where,
                authors=authors,
                author_count=len(authors) or None,
                arxiv_id=arxiv_id,
                arxiv_version=version,
                url=_link(entry, arxiv_id, cuts),
                pdf_url=_pdf_link(entry, arxiv_id, cuts),
                published_on=_date(entry, "published_parsed", "updated_parsed") or feed_date,
                categories=categories,
                cuts=cuts,
            )
        )


def _plain_field(value: object, cuts: set[str], name: str) -> str:
    return clean_text(raw_field(value, cuts, name)) if isinstance(value, str) else ""


def _plain(text: str) -> str:
    return clean_text(html.unescape(strip_tags(text)))


def _title(raw: str) -> tuple[str, str | None]:
    """The plain title, without the RSS 1.0 "(arXiv:2401.12345v1 [cs.LG])" suffix."""
    title = _plain(raw)
    match = _RSS1_TITLE_SUFFIX.search(title)
    if match and match.start() > 0:
        return clean_text(title[: match.start()]), match["category"]
    return title, None


def _abstract(raw: str) -> str:
    text = _plain(raw)
    text = _ANNOUNCE_PREFIX.sub("", text)
    return _ABSTRACT_PREFIX.sub("", text)


def _arxiv_id(entry: feedparser.FeedParserDict) -> tuple[str | None, int | None]:
    """The id, and the version when any of the places it appears in gives one."""
    places = ("id", "title", "link", "summary")
    texts = (entry.get(place) or "" for place in places)
    matches = [_ARXIV_ID.search(text[:RAW_FIELD_MAX_CHARS]) for text in texts]
    matches = [match for match in matches if match]
    if not matches:
        return None, None
    arxiv_id = matches[0]["id"]
    versions = [
        int(match["version"]) for match in matches if match["id"] == arxiv_id and match["version"]
    ]
    return arxiv_id, versions[0] if versions else None


def _authors(entry: feedparser.FeedParserDict, cuts: set[str]) -> list[str]:
    entries = entry.get("authors") or []
    names = [_plain(raw_field(author.get("name") or "", cuts, "authors")) for author in entries]
    if len(names) == 1:  # RSS puts every author in one dc:creator
        names = re.split(r",\s*|\s+and\s+", names[0])
    return [name for name in (name.strip() for name in names) if name]


def _link(entry: feedparser.FeedParserDict, arxiv_id: str | None, cuts: set[str]) -> str:
    if arxiv_id:
        return f"https://arxiv.org/abs/{arxiv_id}"
    return _kept_link(entry.get("link") or "", cuts)


def _pdf_link(entry: feedparser.FeedParserDict, arxiv_id: str | None, cuts: set[str]) -> str:
    for link in entry.get("links") or []:
        is_pdf = link.get("title") == "pdf" or link.get("type") == "application/pdf"
        if is_pdf and (href := _kept_link(link.get("href") or "", cuts)):
            return href
    return f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else ""


def _kept_link(value: object, cuts: set[str]) -> str:
    """The link when it is http(s) and fits, else "" (counted as a dropped link)."""
    link = safe_http_url(value) if isinstance(value, str) else ""
    if len(link) > URL_MAX_CHARS:
        link = ""
    if value and not link:
        cuts.add("links")
    return link


def _date(source: feedparser.FeedParserDict, *keys: str) -> date | None:
    for key in keys:
        value = dict.get(source, key)  # no feedparser fallback mapping (and its warning)
        if value:
            return date(*value[:3])
    return None
