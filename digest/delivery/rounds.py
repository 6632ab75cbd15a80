"""One whole round in this process (the send_digests command, cron, the demo): plan, send,
retry what is due from earlier rounds, and report."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from digest.delivery.messages import compose, load_digests
from digest.delivery.planning import chunked, failure_reason, plan_round, queue_run, refresh_runs
from digest.delivery.sending import send_deliveries
from digest.ingest.runs import fail_stale_runs
from digest.models import DeliveredPaper, Delivery, DigestRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportRow:
    email: str
    status: str
    papers: int
    top_title: str
    error: str = ""


def round_report(run: DigestRun) -> list[ReportRow]:
    deliveries = (
        Delivery.objects.filter(run=run)
        .select_related("subscriber")
        .annotate(paper_count=Count("items"))
        .order_by("subscriber__email")
    )
    top_titles = dict(
        DeliveredPaper.objects.filter(delivery__run=run, position=1).values_list(
            "delivery_id", "paper__title"
        )
    )
    return [
        ReportRow(
            email=delivery.subscriber.email,
            status=delivery.status,
            papers=delivery.paper_count,
            top_title=top_titles.get(delivery.pk, ""),
            error=delivery.error if delivery.status == Delivery.Status.FAILED else "",
        )
        for delivery in deliveries
    ]


def run_digest_round(now: datetime, *, dry_run: bool = False) -> DigestRun:
    """Plan and send one round in this process, and the retries of earlier rounds now due. The
    returned run carries `report` (ReportRow list), `earlier_sent` (retries of earlier rounds
    sent now), `waiting` (deliveries of any round waiting for a retry), `held` (claims another
    process holds) and `stale_ingests` (ingest runs found killed and marked failed now). A dry
    run composes every digest but sends nothing and leaves no trace."""
    if dry_run:
        with transaction.atomic():
            run = plan_round(now)
            for digest in load_digests(queue_run(run)).values():
                try:
                    compose(digest)
                except Exception as error:  # noqa: BLE001 - reported on its delivery
                    logger.exception("composing delivery %s failed", digest.delivery.pk)
                    digest.delivery.status = Delivery.Status.FAILED
                    digest.delivery.error = failure_reason("composing failed", error)
                    digest.delivery.save(update_fields=["status", "error"])
                    run.planned, run.failed = run.planned - 1, run.failed + 1
            run.report = round_report(run) if run.pk is not None else []
            transaction.set_rollback(True)
        return run
    stale_ingests = fail_stale_runs(timezone.now())  # an ingest killed mid-run, from cron too
    run = plan_round(now)
    ids = queue_run(run)
    # Without Celery nothing else retries or recovers: earlier rounds' deliveries whose retry
    # time has come, planned ones never queued, and claims of a process that died (killed
    # mid-round) go out with this one. The claim keeps each once-only if a worker is at them too.
    earlier = left_over_deliveries(exclude_run=run)
    for chunk in chunked(ids + earlier, settings.DIGEST_SEND_CHUNK):
        send_deliveries(chunk)
    refresh_runs()
    if run.pk is not None:
        run.refresh_from_db()
    run.report = round_report(run) if run.pk is not None else []
    run.earlier_sent = Delivery.objects.filter(pk__in=earlier, status=Delivery.Status.SENT).count()
    run.waiting = Delivery.objects.filter(status=Delivery.Status.PLANNED).count()
    run.held = Delivery.objects.filter(status=Delivery.Status.SENDING).count()
    run.stale_ingests = stale_ingests
    return run


def left_over_deliveries(*, exclude_run: DigestRun) -> list[int]:
    """Deliveries of other rounds to send now, oldest first: planned ones whose next attempt is
    due or that were never queued (their planner died before queueing them), and claims older
    than DIGEST_CLAIM_TIMEOUT_SECONDS (their sender died)."""
    now = timezone.now()
    claimed_before = now - timedelta(seconds=settings.DIGEST_CLAIM_TIMEOUT_SECONDS)
    due = Delivery.objects.filter(
        Q(status=Delivery.Status.PLANNED)
        & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
        | Q(status=Delivery.Status.SENDING, claimed_at__lt=claimed_before)
    )
    if exclude_run.pk is not None:
        due = due.exclude(run=exclude_run)
    return list(due.order_by("pk").values_list("pk", flat=True))
