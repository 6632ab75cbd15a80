"""Daily-papers JSON: a list of entries, each with a `paper` object holding `id` (the arXiv id),
`title`, `summary`, `authors`, `upvotes` and `publishedAt`."""

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from digest.ingest.records import (
    COUNT_MAX,
    PaperRecord,
    Rejection,
    bound_record,
    clean_text,
    raw_field,
)

_ARXIV_ID = re.compile(
    r"^(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?$"
)


class DailyJsonError(Exception):
    """The document could not be read at all."""


def load_daily_json(data: bytes) -> list[Any]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DailyJsonError(f"not valid JSON: {error}") from error
    except RecursionError as error:  # "[[[[…": Python's json recurses once per level
        raise DailyJsonError("not valid JSON: nested too deeply") from error
    if isinstance(document, dict) and isinstance(document.get("papers"), list):
        document = document["papers"]
    if not isinstance(document, list):
        raise DailyJsonError("expected a JSON list of daily-papers entries")
    return document


def parse_daily_json(entries: list[Any]) -> Iterator[PaperRecord | Rejection]:
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        paper = entry.get("paper", entry) if isinstance(entry, dict) else None
        if not isinstance(paper, dict):
            yield Rejection(where, "entry is not an object with a paper")
            continue
        cuts: set[str] = set()
        title = _text(paper.get("title") or entry.get("title"), cuts, "title")
        if not title:
            yield Rejection(where, "paper without a title")
            continue
        arxiv_id, version = _arxiv_id(paper.get("id"))
        authors = _authors(paper.get("authors"), cuts)
        yield bound_record(
            PaperRecord(
                title=title,
                abstract=_text(paper.get("summary") or entry.get("summary"), cuts, "abstract"),
                where=where,
                authors=authors,
                author_count=len(authors) or None,
                arxiv_id=arxiv_id,
                arxiv_version=version,
                url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else "",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "",
                published_on=_date(paper.get("publishedAt") or entry.get("publishedAt")),
                upvotes=_count(paper.get("upvotes")),
                cuts=cuts,
            )
        )


def _text(value: Any, cuts: set[str], name: str) -> str:
    """A text field as clean text; a number or a list is read as its text (its repr bounded)."""
    if value is None:
        return ""
    return clean_text(raw_field(value if isinstance(value, str) else str(value), cuts, name))


def _arxiv_id(value: Any) -> tuple[str | None, int | None]:
    match = _ARXIV_ID.match(str(value or "")[:64].strip())
    if not match:
        return None, None
    return match["id"], int(match["v"]) if match["v"] else None


def _authors(value: Any, cuts: set[str]) -> list[str]:
    if not isinstance(value, list):
        return []
    names = (author.get("name") if isinstance(author, dict) else author for author in value)
    return [text for text in (_text(name, cuts, "authors") for name in names if name) if text]


def _date(value: Any) -> date | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _count(value: Any) -> int:
    try:
        return min(max(int(value), 0), COUNT_MAX)
    except (TypeError, ValueError, OverflowError):
        return 0
