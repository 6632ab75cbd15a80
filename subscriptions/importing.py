"""Importing readers from another tool (a UTF-8 CSV file as spreadsheets write it: email,topics,
and optionally frequency,send_hour,timezone,weekday,papers_per_digest,status: the export,
subscriptions.exporting, has them all).

Imported readers gave their consent to that tool, so they come in confirmed and active (or
paused, when the file says so). Bad rows are reported with their line and reason and never stop
the good ones; an address already here (in any spelling of it: subscriptions.addresses) is
updated, not duplicated, and someone who unsubscribed or bounced is never re-subscribed by a file.
When an address is on several rows the last row wins, and the others are reported.
A cell the export neutralized against spreadsheet formulas (a leading `'`) is read back as it was.
Our own record reader around the csv module: it must reject one bad row and keep going, which
csv.reader cannot once a quote is left open (it reads on to the end of the file).
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions.addresses import canonical_email
from subscriptions.consent import PREFERENCE_FIELDS, set_preferences
from subscriptions.forms import time_zone_names
from subscriptions.models import Subscriber
from subscriptions.topics import split_topics

# The only columns a file must have; frequency, send_hour and timezone default to daily, 7 and UTC.
REQUIRED_COLUMNS = ("email", "topics")
COLUMNS = (*REQUIRED_COLUMNS, "frequency", "send_hour", "timezone")  # the export's first columns
OPTIONAL_COLUMNS = ("weekday", "papers_per_digest", "status")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
WEEKDAYS = {label.lower(): value for value, label in Subscriber.Weekday.choices}
MAX_PAPERS_PER_DIGEST = 50
SEPARATOR_NAMES = {",": "comma", ";": "semicolon"}
# A quoted cell may span lines (RFC 4180), up to this many: 20 topics, one per line, and more.
MAX_LINES_PER_ROW = 50
# A line that starts like this begins a new row, even inside a quoted cell left open above it.
ROW_START = re.compile(r'\s*[^\s@"]+@[^\s@"]+\s*')
IMPORTED_STATUSES = (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)
CONSENT_TEXT = "Imported from another tool with the reader's consent (import_subscribers)."
NEVER_REACTIVATED = (
    Subscriber.Status.UNSUBSCRIBED,
    Subscriber.Status.BOUNCED,
    Subscriber.Status.COMPLAINED,
)


@dataclass
class ImportResult:
    """Every data row of the file is counted exactly once: created, updated, unchanged, left
    alone (a reader who unsubscribed, bounced or complained), a duplicate or rejected."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    left_alone: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, int, str]] = field(default_factory=list)  # (line, winner, email)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return (
            self.created
            + self.updated
            + self.unchanged
            + len(self.left_alone)
            + len(self.duplicates)
            + len(self.rejected)
        )


@dataclass
class ReadFile:
    """A file's good rows by lower-cased address (the last good row for an address wins), the
    rows it superseded as (line, winning line, email) and the rejected rows as (line, reason)."""

    rows: dict[str, dict] = field(default_factory=dict)
    duplicates: list[tuple[int, int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


class BadRow(ValueError):
    pass


class BadFile(ValueError):
    """The file cannot be imported at all (nothing was); the message is the one-line reason."""


def neutralize_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a `'` before it."""
    text = str(value)
    # A leading "'" is doubled too, or the import would take it for ours and drop it.
    return f"'{text}" if text.startswith((*FORMULA_STARTS, "'")) else text


def restore_cell(text: str | None) -> str:
    """Undo `neutralize_cell`: drop a `'` that stands before a formula character."""
    text = text or ""
    return (
        text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'")) else text
    )


def _number(text: str, low: int, high: int) -> int | None:
    """The whole number `text` writes in ASCII digits, if it is from low to high ("²" is a digit
    to str.isdigit, and int() refuses more than 4,300 digits)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) + 2:
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_row(raw_row: dict[str, str | None]) -> dict:
    """The subscriber fields of one CSV row; BadRow says what is wrong."""
    row = {name: restore_cell(value) for name, value in raw_row.items() if name is not None}
    if unstorable := next((name for name, value in row.items() if "\x00" in value), None):
        raise BadRow(f"the {unstorable} cell holds a NUL character, which no text field can keep")
    typed = (row.get("email") or "").strip()
    try:
        email = canonical_email(typed)
    except ValidationError as error:
        raise BadRow(f"invalid email address {typed!r}: {' '.join(error.messages)}") from error
    topics = split_topics(row.get("topics") or "")  # split as the form and the ranking split
    if not topics:
        raise BadRow("no topics")
    if len(topics) > Subscriber.MAX_TOPICS:
        raise BadRow(f"{len(topics)} topics (at most {Subscriber.MAX_TOPICS})")
    frequency = (row.get("frequency") or "daily").strip().lower()
    if frequency not in Subscriber.Frequency.values:
        raise BadRow(f"frequency {frequency!r} is not daily or weekly")
    send_hour_text = (row.get("send_hour") or "7").strip()
    send_hour = _number(send_hour_text, 0, 23)
    if send_hour is None:
        raise BadRow(f"send_hour {send_hour_text!r} is not an hour from 0 to 23")
    zone = (row.get("timezone") or "UTC").strip()
    if zone not in time_zone_names():  # the zones the sign-up form and the admin offer
        raise BadRow(f"unknown time zone {zone!r}")
    status = (row.get("status") or "active").strip().lower()
    if status not in IMPORTED_STATUSES:
        raise BadRow(f"status {status!r}: only active or paused readers are imported")
    fields = {
        "email": email,
        "topics": "\n".join(topics),
        "frequency": frequency,
        "send_hour": send_hour,
        "time_zone": zone,
        "status": status,
    }
    # Optional columns change a reader only when the file has them.
    if weekday_text := (row.get("weekday") or "").strip().lower():
        weekday = int(weekday_text) if weekday_text in set("0123456") else None
        weekday = WEEKDAYS.get(weekday_text, weekday)
        if weekday is None:
            raise BadRow(f"weekday {weekday_text!r} is not a day name or a number from 0 (Monday)")
        fields["weekday"] = weekday
    if papers_text := (row.get("papers_per_digest") or "").strip():
        papers = _number(papers_text, 1, MAX_PAPERS_PER_DIGEST)
        if papers is None:
            raise BadRow(
                f"papers_per_digest {papers_text!r} is not a number from 1 to "
                f"{MAX_PAPERS_PER_DIGEST}"
            )
        fields["papers_per_digest"] = papers
    return fields


def decode_csv(data: bytes) -> list[str]:
    """The lines of a CSV file, which must be UTF-8 (a BOM is fine): a file in another encoding
    is refused whole (BadFile), since every row of it would be read wrong, not some."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise BadFile(
            f"not UTF-8: line {line}, column {column} has the byte {data[error.start]:#04x}; "
            "save the file as UTF-8 and import it again (nothing was imported)"
        ) from error
    return text.split("\n")


def import_subscribers_csv(lines: Iterable[str]) -> ImportResult:
    """Import the lines of a CSV file (see `read_rows`) and save the good rows."""
    read = read_rows(lines)
    result = ImportResult(duplicates=read.duplicates, rejected=read.rejected)
    _save(read.rows, result)
    return result


def read_rows(lines: Iterable[str]) -> ReadFile:
    """The rows of a CSV file as RFC 4180 has them (a quoted cell may hold the separator, `""`
    and line breaks), separated by `,` or `;` (whichever the header is split by), a BOM
    ignored. A bad row is rejected with its first line's number and the rows after it are
    read; BadFile when the header is unusable."""
    lines = list(lines)
    header_at = next((index for index, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise BadFile("the file is empty: expected a header line such as email,topics")
    lines[header_at] = lines[header_at].removeprefix("\ufeff")
    header, delimiter = _read_header(lines[header_at].rstrip("\r"), header_at + 1)
    read = ReadFile()
    lines_by_address: dict[str, list[int]] = {}
    for number, cells in _records(lines, header_at + 1, delimiter):
        try:
            if isinstance(cells, BadRow):
                raise cells
            if any(cell.strip() for cell in cells[len(header) :]):
                raise BadRow(
                    f"{len(cells)} cells where the header has {len(header)} "
                    f"(a {SEPARATOR_NAMES[delimiter]} in a cell that is not quoted?)"
                )
            fields = parse_row(dict(zip(header, cells, strict=False)))
        except BadRow as error:
            read.rejected.append((number, str(error)))
            continue
        key = fields["email"].lower()
        read.rows[key] = {**fields, "line": number}
        lines_by_address.setdefault(key, []).append(number)
    for key, numbers in lines_by_address.items():
        read.duplicates += [
            (number, numbers[-1], read.rows[key]["email"]) for number in numbers[:-1]
        ]
    read.duplicates.sort()
    return read


def _read_header(line: str, number: int) -> tuple[list[str], str]:
    """The column names and the separator: `,`, or `;` when that is what splits the header into
    the required columns (a spreadsheet set to a language that writes decimal commas)."""
    found: list[str] = []
    for delimiter in (",", ";"):
        try:
            [cells] = csv.reader([line], delimiter=delimiter, strict=True)
        except csv.Error as error:
            raise BadFile(
                f"line {number}, the header: cannot split it into cells: {error}"
            ) from error
        header = [name.strip().lower() for name in cells]
        if all(name in header for name in REQUIRED_COLUMNS):
            return header, delimiter
        found = found or header
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    raise BadFile(f"line {number}, the header: missing columns: {', '.join(missing)}")


class _Unclosed(ValueError):
    pass


def _records(
    lines: list[str], start: int, delimiter: str
) -> Iterator[tuple[int, list[str] | BadRow]]:
    """(first line's number, cells or why they cannot be read) of each record after line
    `start`. A quoted cell goes on over the next lines until its quote closes, but never over a
    line that starts with an address (a new row: the quote was a stray one) nor past
    MAX_LINES_PER_ROW; the line that opened it is then rejected alone."""
    index = start
    while index < len(lines):
        number, text = index + 1, lines[index].rstrip("\r")
        if not text.strip():
            index += 1
            continue
        end, unclosed = index + 1, False
        while True:
            try:
                cells: list[str] | BadRow = _split(text, delimiter)
            except _Unclosed:
                if (
                    end - index < MAX_LINES_PER_ROW
                    and end < len(lines)
                    and not _starts_a_row(lines[end], delimiter)
                ):
                    text += "\n" + lines[end].rstrip("\r")
                    end += 1
                    continue
                cells, unclosed = (
                    BadRow('a quoted cell is not closed on this line (a missing ")'),
                    True,
                )
            except BadRow as error:
                cells = error
            break
        yield number, cells
        # After a quote left open, the lines it tried to take are read as rows of their own.
        index = index + 1 if unclosed else end


def _starts_a_row(line: str, delimiter: str) -> bool:
    first_cell, separator, _ = line.partition(delimiter)
    return bool(separator) and ROW_START.fullmatch(first_cell) is not None


def _split(text: str, delimiter: str) -> list[str]:
    """The cells of one record; _Unclosed while a quoted cell is still open at its end."""
    try:
        records = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error as error:
        if str(error) == "unexpected end of data":
            raise _Unclosed from error
        if str(error).startswith("new-line character"):
            error = "a line break inside a cell that is not quoted"
        raise BadRow(f"cannot split this line into cells: {error}") from None
    if len(records) != 1:
        raise BadRow(
            "cannot split this line into cells: a line break inside a cell that is not quoted"
        )
    return records[0]


def _save(rows: dict[str, dict], result: ImportResult) -> None:
    now = timezone.now()
    with transaction.atomic():
        existing = {
            subscriber.email_lower: subscriber
            for subscriber in Subscriber.objects.annotate(email_lower=Lower("email")).filter(
                email_lower__in=list(rows)
            )
        }
        new, changed = [], []
        for key, fields in rows.items():
            subscriber = existing.get(key)
            if subscriber is None:
                new.append(
                    Subscriber(
                        **{
                            name: fields[name]
                            for name in ["email", *PREFERENCE_FIELDS]
                            if name in fields
                        },
                        status=fields["status"],
                        consent_at=now,
                        consent_text=CONSENT_TEXT,
                        confirmed_at=now,
                    )
                )
                continue
            if subscriber.status in NEVER_REACTIVATED:
                result.left_alone.append((fields["line"], f"{fields['email']} {subscriber.status}"))
                continue
            before = [getattr(subscriber, name) for name in [*PREFERENCE_FIELDS, "status"]]
            set_preferences(subscriber, fields)
            if subscriber.status == Subscriber.Status.PENDING:
                subscriber.status = Subscriber.Status.ACTIVE
                subscriber.confirmed_at = now
            if before == [getattr(subscriber, name) for name in [*PREFERENCE_FIELDS, "status"]]:
                result.unchanged += 1
                continue
            subscriber.updated_at = now
            changed.append(subscriber)
        Subscriber.objects.bulk_create(new, batch_size=1000)
        Subscriber.objects.bulk_update(
            changed,
            [*PREFERENCE_FIELDS, "status", "confirmed_at", "updated_at"],
            batch_size=1000,
        )
    result.created, result.updated = len(new), len(changed)
    result.rejected.sort()
    result.left_alone.sort()
