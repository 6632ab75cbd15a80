from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.importing import BadFile, decode_csv, import_subscribers_csv


class Command(BaseCommand):
    help = (
        "Import readers from another tool as confirmed subscribers. A UTF-8 CSV file (a BOM is "
        "fine; cells separated by ',' or ';', quoted cells may span lines) with the columns "
        "email,topics (topics separated by ';', ',' or new lines) and optionally frequency "
        "(daily), send_hour (7), timezone (UTC), weekday, papers_per_digest and status, as "
        "export_subscribers writes them. When an address is on several rows, the last row wins "
        "(the others are listed). Bad rows are reported with their line and skipped, and make "
        "the exit status 1 unless --allow-rejects; an address already here is updated, and one "
        "that unsubscribed, bounced or complained is left as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--allow-rejects",
            action="store_true",
            help="Exit 0 even when some rows were rejected (the good rows are imported anyway).",
        )

    def handle(self, *args, file: Path, allow_rejects: bool, **options) -> None:
        try:
            data = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: cannot read it: {error.strerror}") from error
        try:
            result = import_subscribers_csv(decode_csv(data))
        except BadFile as error:
            raise CommandError(f"{file}: {error}") from error
        for line, winner, email in result.duplicates:
            self.stdout.write(
                f"{file}:{line}: {email} again on line {winner}; the last row wins, this one "
                "is skipped"
            )
        for line, reader in result.left_alone:
            self.stdout.write(f"{file}:{line}: {reader}; left as they are, not re-subscribed")
        for line, reason in result.rejected:
            self.stderr.write(f"{file}:{line}: {reason}")
        self.stdout.write(
            f"Imported {result.created} new and updated {result.updated} subscribers; "
            f"{result.unchanged} unchanged, {len(result.left_alone)} left alone (unsubscribed or "
            f"suppressed), {len(result.duplicates)} duplicate rows skipped (the last row for an "
            f"address wins), rejected {len(result.rejected)} rows; {result.rows} rows read."
        )
        if result.rejected and not allow_rejects:
            raise CommandError(
                f"{len(result.rejected)} rows of {file} were rejected (listed above; the others "
                "were imported); --allow-rejects exits 0 in that case"
            )
