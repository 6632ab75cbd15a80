"""What every parser yields: a paper record it read, or a rejection saying where and why; and
the bounds every record is held to before it is stored (`bound_record`)."""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from urllib.parse import urlsplit

TITLE_MAX_CHARS = 1000  # Paper.title's max_length
URL_MAX_CHARS = 500  # Paper.url's and pdf_url's
COUNT_MAX = 2**31 - 1  # the largest PositiveIntegerField on every database
# arXiv caps an abstract at 1,920 characters; five times that leaves room for other sources,
# while a 5.8 MB "abstract" made every page listing it 4.7 s slower.
ABSTRACT_MAX_CHARS = 10_000
AUTHOR_MAX_CHARS = 200  # one name
AUTHORS_MAX = 500  # names kept (author_count keeps the real count: collaborations list 3,000)
CATEGORY_MAX_CHARS = 64
CATEGORIES_MAX = 20
# A parser looks at no more than this many characters of a raw field (markup included) before
# cleaning it, so that no field costs more than its bound to read.
RAW_FIELD_MAX_CHARS = 8 * ABSTRACT_MAX_CHARS


@dataclass
class PaperRecord:
    title: str
    abstract: str = ""
    where: str = ""  # "line 12" or "entry 3": where the record starts in its input
    authors: list[str] = field(default_factory=list)
    author_count: int | None = None
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    url: str = ""
    pdf_url: str = ""
    published_on: date | None = None
    upvotes: int = 0
    categories: list[str] = field(default_factory=list)
    cuts: set[str] = field(default_factory=set)  # the fields cut (or links dropped) at a bound

    @cached_property
    def title_key(self) -> str:
        return title_key(self.title)


@dataclass(frozen=True)
class Rejection:
    where: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "why": self.why}


def title_key(title: str) -> str:
    """The deduplication key of a title: accents, case, punctuation and spacing do not count."""
    if title.isascii():
        return " ".join(_WORD.findall(title.lower()))[:TITLE_MAX_CHARS]
    decomposed = unicodedata.normalize("NFKD", title).casefold()
    letters = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_WORD.findall(letters))[:TITLE_MAX_CHARS]


_WORD = re.compile(r"[^\W_]+")


_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
# Half of a UTF-16 pair, alone (JSON's "\ud800" escape gives one): no database stores it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """One line of plain text: no control or zero-width characters, single spaces, and U+FFFD
    for a lone surrogate."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text  # most lines (isprintable is False for tabs, NBSP, controls, surrogates)
    return " ".join(_INVISIBLE.sub(" ", _SURROGATE.sub("\ufffd", text)).split())


def clean_title(text: str) -> str:
    """A title as `clean_text`, cut at a word to TITLE_MAX_CHARS."""
    return cut_at_word(clean_text(text), TITLE_MAX_CHARS)


_ELLIPSIS = "\u2026"


def cut_at_word(text: str, max_chars: int) -> str:
    """The text whole when it fits, else cut at the last space within `max_chars` (or at
    `max_chars` in a text without spaces near the end) and ended with an ellipsis."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(_ELLIPSIS)
    space = text.rfind(" ", 0, room + 1)
    end = space if space > room // 2 else room
    return text[:end].rstrip() + _ELLIPSIS


def raw_field(value: str, record_cuts: set[str], name: str) -> str:
    """The part of a raw field a parser reads (RAW_FIELD_MAX_CHARS); a longer one counts as cut."""
    if len(value) > RAW_FIELD_MAX_CHARS:
        record_cuts.add(name)
        return value[:RAW_FIELD_MAX_CHARS]
    return value


def safe_http_url(value: str) -> str:
    """The URL when it is an absolute http(s) URL with a host, else "": no `javascript:`,
    `data:`, `file:` or relative link, and no whitespace or control character inside it."""
    url = value.strip(" \t\r\n") if isinstance(value, str) else ""
    if not url or _NOT_IN_URL.search(url):
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return url


# Whitespace and controls (a browser strips or skips them, so "java\tscript:" runs), and the
# backslash, which browsers read as a slash in the authority.
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\\\s]")


def bound_record(record: PaperRecord) -> PaperRecord:
    """The record held to the bounds: over-long texts cut at a word, names and categories
    beyond the bounds left out, links that are not http(s) or too long dropped; every field
    that lost something is named in `record.cuts`."""
    cuts = record.cuts
    title = cut_at_word(record.title, TITLE_MAX_CHARS)
    if title != record.title:
        record.title = title
        record.__dict__.pop("title_key", None)  # the cached key was of the whole title
        cuts.add("title")
    abstract = cut_at_word(record.abstract, ABSTRACT_MAX_CHARS)
    if abstract != record.abstract:
        record.abstract = abstract
        cuts.add("abstract")
    authors = [cut_at_word(name, AUTHOR_MAX_CHARS) for name in record.authors[:AUTHORS_MAX]]
    if authors != record.authors:
        if record.author_count is None or record.author_count < len(record.authors):
            record.author_count = min(len(record.authors), COUNT_MAX) or None
        record.authors = authors
        cuts.add("authors")
    categories = [name for name in record.categories if len(name) <= CATEGORY_MAX_CHARS]
    if len(categories) > CATEGORIES_MAX or categories != record.categories:
        record.categories = categories[:CATEGORIES_MAX]
        cuts.add("categories")
    for name in ("url", "pdf_url"):
        value = getattr(record, name)
        safe = safe_http_url(value)
        if len(safe) > URL_MAX_CHARS:
            safe = ""
        if value and not safe:
            cuts.add("links")
        setattr(record, name, safe)
    return record
