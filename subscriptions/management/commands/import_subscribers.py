from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from subscriptions.importing import import_subscribers_csv


class Command(BaseCommand):
    help = (
        "Import readers from another tool as confirmed subscribers. CSV columns: "
        "email,topics,frequency,send_hour,timezone (topics separated by ';'). "
        "Bad rows are reported and skipped; an address already here is updated."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options) -> None:
        if not file.exists():
            raise CommandError(f"{file} does not exist")
        with file.open(newline="", encoding="utf-8-sig") as stream:
            result = import_subscribers_csv(stream)
        for line, reason in result.rejected:
            self.stderr.write(f"{file}:{line}: {reason}")
        self.stdout.write(
            f"Imported {result.created} new and updated {result.updated} subscribers; "
            f"rejected {len(result.rejected)} rows."
        )
