"""What every parser yields: a paper record it read, or a rejection saying where and why."""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

TITLE_MAX_CHARS = 1000  # Paper.title's max_length
URL_MAX_CHARS = 500  # Paper.url's and pdf_url's
COUNT_MAX = 2**31 - 1  # the largest PositiveIntegerField on every database


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
    """A title as `clean_text`, cut to TITLE_MAX_CHARS with no space left at the cut."""
    return clean_text(text)[:TITLE_MAX_CHARS].rstrip()
