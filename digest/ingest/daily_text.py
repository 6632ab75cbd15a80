"""Daily-papers page dumps: the text a browser copies from the daily-papers page.

Three layouts occur, and a dump may mix their quirks:
- header lines, then the first title glued to "Subscribe", then title / abstract line pairs;
- a page header ("new", "Daily Papers", "byAK and the research community", "Aug 20"), then
  title / blank / abstract / blank;
- the same with metadata after each abstract: "• 8 authors", "·", "Jun 12, 2023 1" (date, upvotes).

Blank lines carry no meaning here. Titles are short and abstracts long: a short line followed by
another short line is a title and its (short) abstract, unless the line after them is long, in
which case the first title lost its abstract and is reported.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from digest.ingest.records import COUNT_MAX, PaperRecord, Rejection, bound_record, clean_text

LONG_LINE_CHARS = 300  # longer than any real title; most abstracts are longer

_HEADER_LINES = {
    "new",
    "subscribe",
    "daily papers",
    "byak and the research community",
}
_HEADER_PREFIX = "get trending papers in your email inbox"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MONTH = rf"(?P<month>{'|'.join(_MONTHS)})[a-z]*\.?"
_PAGE_DATE = re.compile(rf"^{_MONTH} \d{{1,2}}$")
_PUBLISHED = re.compile(rf"^{_MONTH} (?P<day>\d{{1,2}}), (?P<year>\d{{4}})(?: (?P<upvotes>\d+))?$")
_AUTHORS = re.compile(r"^•\s*(?:(?P<count>\d+) authors?|(?P<names>.+))$")
_SEPARATOR = "·"


@dataclass(frozen=True)
class _Line:
    number: int
    kind: str  # "text", "authors", "published", "separator"
    text: str


def parse_daily_text(lines: Iterable[str]) -> Iterator[PaperRecord | Rejection]:
    """Paper records (and rejections) from the lines of a daily-papers dump, in order."""
    pending: _Line | None = None  # a title waiting for its abstract
    current: PaperRecord | None = None  # a paired record, waiting for metadata lines
    classified = _classify(lines)
    line = next(classified, None)
    while line is not None:
        following = next(classified, None)
        if line.kind == "text":
            if pending is None:
                if current is not None:
                    yield bound_record(current)
                    current = None
                if _is_long(line):
                    yield Rejection(_where(line), "a long line with no title before it")
                else:
                    pending = line
            elif _is_long(line) or not (
                following and following.kind == "text" and _is_long(following)
            ):
                current = PaperRecord(title=pending.text, abstract=line.text, where=_where(pending))
                pending = None
            else:
                yield Rejection(_where(pending), "title with no abstract (another title follows)")
                pending = line
        else:
            if pending is not None:
                yield Rejection(_where(pending), "title with no abstract (metadata follows)")
                pending = None
            if current is not None:
                _apply_metadata(current, line)
            elif line.kind == "authors":
                yield Rejection(_where(line), "author line with no paper before it")
        line = following
    if current is not None:
        yield bound_record(current)
    if pending is not None:
        yield Rejection(_where(pending), "title with no abstract at the end (truncated dump?)")


def _classify(lines: Iterable[str]) -> Iterator[_Line]:
    """The meaningful lines, numbered from 1: page chrome and blank lines are dropped."""
    after_banner = False
    for number, raw in enumerate(lines, start=1):
        text = clean_text(raw)
        if not text:
            continue
        if after_banner and text.startswith("Subscribe"):
            text = text.removeprefix("Subscribe").strip()  # the first title, glued to the button
            after_banner = False
            if not text:
                continue
        if len(text) > LONG_LINE_CHARS:  # an abstract: no page chrome or metadata is this long
            after_banner = False
            yield _Line(number, "text", text)
            continue
        lowered = text.lower()
        if lowered.startswith(_HEADER_PREFIX):
            after_banner = True
            continue
        if lowered in _HEADER_LINES or _PAGE_DATE.match(text):
            continue
        after_banner = False
        if text == _SEPARATOR:
            yield _Line(number, "separator", text)
        elif _PUBLISHED.match(text):
            yield _Line(number, "published", text)
        elif _AUTHORS.match(text):
            yield _Line(number, "authors", text)
        else:
            yield _Line(number, "text", text)


def _apply_metadata(record: PaperRecord, line: _Line) -> None:
    if line.kind == "authors":
        match = _AUTHORS.match(line.text)
        if match["count"]:
            record.author_count = min(int(match["count"]), COUNT_MAX)
        else:
            record.authors = [name.strip() for name in match["names"].split(",") if name.strip()]
            record.author_count = len(record.authors)
    elif line.kind == "published":
        match = _PUBLISHED.match(line.text)
        record.published_on = _published_on(match)
        record.upvotes = min(int(match["upvotes"] or 0), COUNT_MAX)


def _published_on(match: re.Match) -> date | None:
    try:
        return date(int(match["year"]), _MONTHS.index(match["month"]) + 1, int(match["day"]))
    except ValueError:
        return None


def _is_long(line: _Line) -> bool:
    return len(line.text) > LONG_LINE_CHARS


def _where(line: _Line) -> str:
    return f"line {line.number}"
