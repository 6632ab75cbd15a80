"""Importing readers from another tool (UTF-8 CSV, one reader per line: email,topics, and
optionally frequency,send_hour,timezone,weekday,papers_per_digest,status: the admin's export has
them all).

Imported readers gave their consent to that tool, so they come in confirmed and active (or
paused, when the file says so). Bad rows are reported with their line and reason and never stop
the good ones; an address already here (in any spelling of it: subscriptions.addresses) is
updated, not duplicated, and someone who unsubscribed or bounced is never re-subscribed by a file.
A cell the export neutralized against spreadsheet formulas (a leading `'`) is read back as it was.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions.addresses import canonical_email
from subscriptions.consent import PREFERENCE_FIELDS, set_preferences
from subscriptions.forms import time_zone_names
from subscriptions.models import Subscriber

# The only columns a file must have; frequency, send_hour and timezone default to daily, 7 and UTC.
REQUIRED_COLUMNS = ("email", "topics")
COLUMNS = (*REQUIRED_COLUMNS, "frequency", "send_hour", "timezone")  # the export's first columns
OPTIONAL_COLUMNS = ("weekday", "papers_per_digest", "status")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
WEEKDAYS = {label.lower(): value for value, label in Subscriber.Weekday.choices}
MAX_PAPERS_PER_DIGEST = 50
IMPORTED_STATUSES = (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)
CONSENT_TEXT = "Imported from another tool with the reader's consent (import_subscribers)."
NEVER_REACTIVATED = (
    Subscriber.Status.UNSUBSCRIBED,
    Subscriber.Status.BOUNCED,
    Subscriber.Status.COMPLAINED,
)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class BadRow(ValueError):
    pass


class BadFile(ValueError):
    """The file cannot be imported at all (nothing was); the message is the one-line reason."""


def neutralize_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a `'` before it."""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def restore_cell(text: str | None) -> str:
    """Undo `neutralize_cell`: drop a `'` that stands before a formula character."""
    text = text or ""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


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
    typed = (row.get("email") or "").strip()
    try:
        email = canonical_email(typed)
    except ValidationError as error:
        raise BadRow(f"invalid email address {typed!r}: {' '.join(error.messages)}") from error
    topics = [topic.strip() for topic in (row.get("topics") or "").split(";") if topic.strip()]
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
    rows, rejected = read_rows(lines)
    result = ImportResult(rejected=rejected)
    _save(rows, result)
    return result


def read_rows(lines: Iterable[str]) -> tuple[dict[str, dict], list[tuple[int, str]]]:
    """The subscriber fields of each good row, by lower-cased address (the last row for an
    address wins), and the rejected rows as (line, reason). One reader per line: a line that
    cannot be split into cells (an unterminated quote, a stray one) is rejected with its number
    and the lines after it are read as their own rows. BadFile when the header is unusable."""
    rows: dict[str, dict] = {}
    rejected: list[tuple[int, str]] = []
    header: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        try:
            cells = _split(line)
        except BadRow as error:
            if header is None:
                raise BadFile(f"line {number}, the header: {error}") from error
            rejected.append((number, str(error)))
            continue
        if cells is None:
            continue  # a blank line
        if header is None:
            header = [name.strip().lower() for name in cells]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise BadFile(f"line {number}, the header: missing columns: {', '.join(missing)}")
            continue
        try:
            if any(cell.strip() for cell in cells[len(header) :]):
                raise BadRow(
                    f"{len(cells)} cells where the header has {len(header)} "
                    "(a comma in a cell that is not quoted?)"
                )
            fields = parse_row(dict(zip(header, cells, strict=False)))
        except BadRow as error:
            rejected.append((number, str(error)))
            continue
        rows[fields["email"].lower()] = {**fields, "line": number}
    if header is None:
        raise BadFile("the file is empty: expected a header line such as email,topics")
    return rows, rejected


def _split(line: str) -> list[str] | None:
    """The cells of one line (None if it is blank); BadRow when it cannot be split cleanly."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    try:
        [cells] = csv.reader([line], strict=True)
    except csv.Error as error:
        if str(error) == "unexpected end of data":
            raise BadRow('a quoted cell is not closed on this line (a missing ")') from error
        raise BadRow(f"cannot split this line into cells: {error}") from error
    return cells


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
                result.rejected.append(
                    (fields["line"], f"{fields['email']} is {subscriber.status}; not re-subscribed")
                )
                continue
            set_preferences(subscriber, fields)
            if subscriber.status == Subscriber.Status.PENDING:
                subscriber.status = Subscriber.Status.ACTIVE
                subscriber.confirmed_at = now
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
