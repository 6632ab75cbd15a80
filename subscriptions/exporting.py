"""Exporting readers as the CSV `import_subscribers` reads back (subscriptions.importing): the
same columns, topics joined with ";", every cell safe to open in a spreadsheet."""

import csv
from collections.abc import Iterable, Sequence
from typing import IO

from subscriptions.importing import COLUMNS, IMPORTED_STATUSES, OPTIONAL_COLUMNS, neutralize_cell
from subscriptions.models import Subscriber, SubscriberQuerySet


def write_subscribers_csv(subscribers: Iterable[Subscriber], out: IO[str]) -> int:
    """Write the readers to `out` (a cell that would start a formula, a topic "=HYPERLINK(…)" or
    "-survey", gets a leading `'`, which the import drops again); how many were written."""
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, *OPTIONAL_COLUMNS])
    count = 0
    for subscriber in subscribers:
        row = [
            subscriber.email,
            ";".join(subscriber.topic_lines),
            subscriber.frequency,
            subscriber.send_hour,
            subscriber.time_zone,
            subscriber.get_weekday_display().lower(),
            subscriber.papers_per_digest,
            subscriber.status,
        ]
        writer.writerow([neutralize_cell(cell) for cell in row])
        count += 1
    return count


def subscribers_to_export(statuses: Sequence[str] = IMPORTED_STATUSES) -> SubscriberQuerySet:
    """The readers with these statuses (by default the ones an import brings in), oldest first."""
    return Subscriber.objects.filter(status__in=statuses).order_by("pk")
