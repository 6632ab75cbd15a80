"""Importing readers from another tool (CSV: email,topics,frequency,send_hour,timezone).

Imported readers gave their consent to that tool, so they come in confirmed and active. Bad rows
are reported with their line and reason and never stop the good ones; an address already here is
updated, not duplicated, and someone who unsubscribed or bounced is never re-subscribed by a file.
"""

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions.models import Subscriber

COLUMNS = ("email", "topics", "frequency", "send_hour", "timezone")
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


def parse_row(row: dict[str, str | None]) -> dict:
    """The subscriber fields of one CSV row; BadRow says what is wrong."""
    email = (row.get("email") or "").strip()
    try:
        validate_email(email)
    except ValidationError as error:
        raise BadRow(f"invalid email address {email!r}") from error
    topics = [topic.strip() for topic in (row.get("topics") or "").split(";") if topic.strip()]
    if not topics:
        raise BadRow("no topics")
    if len(topics) > Subscriber.MAX_TOPICS:
        raise BadRow(f"{len(topics)} topics (at most {Subscriber.MAX_TOPICS})")
    frequency = (row.get("frequency") or "daily").strip().lower()
    if frequency not in Subscriber.Frequency.values:
        raise BadRow(f"frequency {frequency!r} is not daily or weekly")
    send_hour_text = (row.get("send_hour") or "7").strip()
    if not send_hour_text.isdigit() or not 0 <= int(send_hour_text) <= 23:
        raise BadRow(f"send_hour {send_hour_text!r} is not an hour from 0 to 23")
    zone = (row.get("timezone") or "UTC").strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise BadRow(f"unknown time zone {zone!r}") from error
    return {
        "email": email,
        "topics": "\n".join(topics),
        "frequency": frequency,
        "send_hour": int(send_hour_text),
        "time_zone": zone,
    }


def import_subscribers_csv(lines: Iterable[str]) -> ImportResult:
    result = ImportResult()
    reader = csv.DictReader(lines)
    missing = set(COLUMNS) - set(reader.fieldnames or [])
    if missing:
        result.rejected.append((1, f"missing columns: {', '.join(sorted(missing))}"))
        return result
    rows: dict[str, dict] = {}  # by lower-cased address: the last row for an address wins
    for row in reader:
        try:
            fields = parse_row(row)
        except BadRow as error:
            result.rejected.append((reader.line_num, str(error)))
            continue
        rows[fields["email"].lower()] = {**fields, "line": reader.line_num}
    _save(rows, result)
    return result


def _save(rows: dict[str, dict], result: ImportResult) -> None:
    now = timezone.now()
    preference_fields = ["topics", "frequency", "send_hour", "time_zone"]
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
                        **{name: fields[name] for name in ["email", *preference_fields]},
                        status=Subscriber.Status.ACTIVE,
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
            for name in preference_fields:
                setattr(subscriber, name, fields[name])
            if subscriber.status == Subscriber.Status.PENDING:
                subscriber.status = Subscriber.Status.ACTIVE
                subscriber.confirmed_at = now
            subscriber.updated_at = now
            changed.append(subscriber)
        Subscriber.objects.bulk_create(new, batch_size=1000)
        Subscriber.objects.bulk_update(
            changed,
            [*preference_fields, "status", "confirmed_at", "updated_at"],
            batch_size=1000,
        )
    result.created, result.updated = len(new), len(changed)
    result.rejected.sort()
