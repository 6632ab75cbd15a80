from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from digest.delivery.rounds import run_digest_round
from digest.models import DigestRun


class Command(BaseCommand):
    help = "Plan and send one round of digests in this process, then print who got what."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--now", help="Plan as if it were this moment (ISO 8601).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Compose every digest, send nothing."
        )

    def handle(self, *args, now: str | None = None, dry_run: bool = False, **options) -> None:
        moment = timezone.now()
        if now:
            moment = parse_datetime(now)
            if moment is None:
                raise CommandError(f"--now {now!r} is not an ISO 8601 date and time")
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, timezone.get_current_timezone())
        try:
            run = run_digest_round(moment, dry_run=dry_run)
        except DatabaseError as error:
            raise CommandError(
                f"digest round at {moment.isoformat()} failed and could not be recorded: "
                f"{type(error).__name__}: {error}"
            ) from error
        rows = run.report
        width = max([len("subscriber")] + [len(row.email) for row in rows])
        self.stdout.write(f"{'subscriber':<{width}}  {'status':<8}  papers  top title")
        for row in rows:
            title = row.top_title if len(row.top_title) <= 70 else row.top_title[:69] + "…"
            self.stdout.write(f"{row.email:<{width}}  {row.status:<8}  {row.papers:>6}  {title}")
            if row.error:
                self.stdout.write(f"{'':<{width}}  {row.error}")
        if not rows and run.status != DigestRun.Status.FAILED:
            self.stdout.write(
                "Nobody is due: each reader gets one digest per period (their local date), "
                "from their send hour on."
            )
        verb = "would send" if dry_run else "sent"
        sent = run.planned if dry_run else run.sent
        self.stdout.write(
            f"{verb} {sent}, skipped {run.skipped} (nothing relevant), failed {run.failed}"
            f" at {moment.isoformat()}"
        )
        if not dry_run and run.earlier_sent:
            self.stdout.write(f"also sent {run.earlier_sent} retried from earlier rounds")
        if not dry_run and run.waiting:
            self.stdout.write(
                f"{run.waiting} waiting to retry after a temporary error: a Celery worker "
                "retries them, or run send_digests again later"
            )
        if not dry_run and run.held:
            self.stdout.write(
                f"{run.held} being sent by another process; if it died, they are taken over "
                f"once their claim is {settings.DIGEST_CLAIM_TIMEOUT_SECONDS:g} s old: "
                "run send_digests again then"
            )
        for ingest_run in getattr(run, "stale_ingests", []):
            self.stdout.write(
                f"ingest run {ingest_run.pk} of {ingest_run.source}: {ingest_run.error}"
            )
        if run.status == DigestRun.Status.FAILED:
            raise CommandError(f"the digest round at {moment.isoformat()} failed: {run.error}")
