import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.exporting import subscribers_to_export, write_subscribers_csv
from subscriptions.importing import IMPORTED_STATUSES
from subscriptions.models import Subscriber


class Command(BaseCommand):
    help = (
        "Write readers as the UTF-8 CSV import_subscribers reads back to the same readers "
        "(email, topics, frequency, send_hour, timezone, weekday, papers_per_digest, status). "
        "By default the active and paused readers, the ones an import brings in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default="-", help="Where to write ('-': stdout).")
        parser.add_argument(
            "--status",
            action="append",
            choices=Subscriber.Status.values,
            help="Export readers with this status (repeatable); default: active and paused.",
        )

    def handle(self, *args, file: str, status: list[str] | None, **options) -> None:
        readers = subscribers_to_export(status or IMPORTED_STATUSES).iterator(chunk_size=2000)
        if file == "-":
            count = write_subscribers_csv(readers, self.stdout)
            sys.stderr.write(f"Exported {count} subscribers.\n")
            return
        try:
            with Path(file).open("w", encoding="utf-8", newline="") as out:
                count = write_subscribers_csv(readers, out)
        except OSError as error:
            raise CommandError(f"{file}: cannot write it: {error.strerror}") from error
        self.stdout.write(f"Exported {count} subscribers to {file}.")
