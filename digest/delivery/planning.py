"""Planning a round: who is due, their papers ranked in one pass, one delivery row each.

One transaction per round, and the unique (subscriber, period) pair lets only one planner create
each delivery, so concurrent or killed planners leave nothing doubled and nothing half-planned."""

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from digest.delivery.periods import digest_period
from digest.ingest.bulk_insert import insert_rows
from digest.matching import Match, embed_new_topic_lines, select_papers
from digest.models import DeliveredPaper, Delivery, DigestRun
from subscriptions.models import Subscriber
from subscriptions.selectors import subscribers_for_digests

logger = logging.getLogger(__name__)
MAX_PLAN_SLICE = 30_000  # a slice's ids go into one IN (...) clause: under SQLite's 32,766


def due_subscribers(
    now: datetime, among: Sequence[int] | None = None
) -> list[tuple[Subscriber, object]]:
    """Active subscribers whose send hour has come at `now` and who have no delivery for that
    period yet, with the period (their local date); only those of `among` (ids) if given."""
    candidates = subscribers_for_digests(now)
    existing_deliveries = Delivery.objects.all()
    if among is not None:
        candidates = candidates.filter(pk__in=among)
        existing_deliveries = existing_deliveries.filter(subscriber_id__in=among)
    due = []
    for subscriber in candidates:
        period = digest_period(subscriber, now)
        if period is not None:
            due.append((subscriber, period))
    periods = {period for _, period in due}
    existing = set(
        existing_deliveries.filter(period__in=periods).values_list("subscriber_id", "period")
    )
    return [(s, period) for s, period in due if (s.pk, period) not in existing]


def due_slices(now: datetime, size: int) -> list[list[int]]:
    """The ids of the subscribers due at `now`, in slices of at most `size`: each slice is
    planned as a round of its own (plan_deliveries(now, among=slice)), so a tick holds a slice
    of readers in memory at a time and rank workers plan slices side by side."""
    size = min(size, MAX_PLAN_SLICE)
    return list(chunked([subscriber.pk for subscriber, _ in due_subscribers(now)], size))


def select_papers_apart(
    subscribers: Sequence[Subscriber], *, now: datetime
) -> tuple[dict[int, list[Match]], dict[int, str]]:
    """(matches, failures): everyone's papers in one vectorized pass; if that pass raises, the
    readers are ranked again in halves, down to single readers, so that only those whose own
    ranking raises fail ({subscriber id: reason}). A database error fails the whole round."""
    try:
        return select_papers(subscribers, now=now), {}
    except DatabaseError:
        raise
    except Exception as error:
        if len(subscribers) == 1:
            logger.exception("ranking papers for subscriber %s failed", subscribers[0].pk)
            return {}, {subscribers[0].pk: failure_reason("ranking failed", error)}
    middle = len(subscribers) // 2
    matches, failures = select_papers_apart(subscribers[:middle], now=now)
    more_matches, more_failures = select_papers_apart(subscribers[middle:], now=now)
    return matches | more_matches, failures | more_failures


def failure_reason(what: str, error: BaseException) -> str:
    return f"{what}: {type(error).__name__}: {error}"[:2000]


def record_matches(
    deliveries: Mapping[int, int], matches: Mapping[int, list[Match]], failures: Mapping[int, str]
) -> None:
    """Store each delivery's papers ({subscriber id: delivery id}); one with nothing relevant is
    skipped, one whose ranking failed is failed with the reason."""
    insert_rows(
        DeliveredPaper,
        ["delivery_id", "paper_id", "position", "score", "pinned", "topic", "matched_terms", "why"],
        (
            (
                delivery_id,
                match.paper_id,
                position,
                match.score,
                match.pinned,
                match.topic[:500],
                list(match.matched_terms),
                match.why[:500],
            )
            for subscriber_id, delivery_id in deliveries.items()
            for position, match in enumerate(matches.get(subscriber_id, []), start=1)
        ),
    )
    nothing = [
        delivery_id
        for subscriber_id, delivery_id in deliveries.items()
        if not matches.get(subscriber_id) and subscriber_id not in failures
    ]
    for ids in (nothing[i : i + 10_000] for i in range(0, len(nothing), 10_000)):
        Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.SKIPPED)
    by_reason: dict[str, list[int]] = {}
    for subscriber_id, reason in failures.items():
        if subscriber_id in deliveries:
            by_reason.setdefault(reason, []).append(deliveries[subscriber_id])
    for reason, ids in by_reason.items():
        Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.FAILED, error=reason)


def plan_deliveries(now: datetime, among: Sequence[int] | None = None) -> DigestRun:
    """Create this round's deliveries and their papers (for the subscribers due among `among`
    if given); those with nothing relevant are skipped, those whose ranking failed are failed
    (the others are planned all the same).

    One transaction: a planner that dies leaves nothing half-planned. Concurrent planners are safe:
    the unique (subscriber, period) pair lets only one of them create each delivery."""
    due = due_subscribers(now, among)
    if not due:
        return DigestRun(now=now)  # not saved: a tick with nothing due leaves no row behind
    embed_new_topic_lines([subscriber for subscriber, _ in due])
    with transaction.atomic():
        run = DigestRun.objects.create(now=now)
        Delivery.objects.bulk_create(
            [Delivery(subscriber=s, period=period, run=run) for s, period in due],
            ignore_conflicts=True,
            batch_size=1000,
        )
        by_id = {subscriber.pk: subscriber for subscriber, _ in due}
        created = dict(Delivery.objects.filter(run=run).values_list("subscriber_id", "pk"))
        subscribers = [by_id[subscriber_id] for subscriber_id in created]
        matches, failures = select_papers_apart(subscribers, now=now) if subscribers else ({}, {})
        record_matches(created, matches, failures)
        run.failed = len(failures)
        run.skipped = sum(1 for s in created if not matches.get(s) and s not in failures)
        run.planned = len(created) - run.skipped - run.failed
        if failures and len(failures) == len(created):
            run.status = DigestRun.Status.FAILED
            run.error = (
                f"ranking failed for every reader due ({len(failures)}), "
                f"e.g. {next(iter(failures.values()))}"
            )[:2000]
        run.save(update_fields=["planned", "skipped", "failed", "status", "error"])
    return run


def plan_round(now: datetime, among: Sequence[int] | None = None) -> DigestRun:
    """plan_deliveries, or, if the round cannot be planned at all, a failed DigestRun with the
    reason (deliveries of earlier rounds can still go out)."""
    try:
        return plan_deliveries(now, among)
    except Exception as error:
        return _failed_round(now, error)


def plan_tick(now: datetime, slice_size: int) -> DigestRun | list[list[int]]:
    """Beat's tick: the round planned here (plan_round), or, when more readers are due than one
    slice holds, their ids in slices for rank workers to plan (each with plan_round(now, ids)).
    A tick whose readers cannot even be listed is recorded as a failed round."""
    try:
        slices = due_slices(now, slice_size)
    except Exception as error:
        return _failed_round(now, error)
    if len(slices) > 1:
        return slices
    return plan_round(now, slices[0] if slices else [])


def _failed_round(now: datetime, error: Exception) -> DigestRun:
    logger.exception("planning the digest round at %s failed", now.isoformat())
    return DigestRun.objects.create(
        now=now,
        status=DigestRun.Status.FAILED,
        error=failure_reason("planning failed", error),
        finished_at=timezone.now(),
    )


def queue_run(run: DigestRun) -> list[int]:
    """Mark the run's planned deliveries as queued now and return their ids, to send."""
    if run.pk is None:
        return []
    deliveries = Delivery.objects.filter(run=run, status=Delivery.Status.PLANNED)
    ids = list(deliveries.order_by("pk").values_list("pk", flat=True))
    deliveries.update(next_attempt_at=timezone.now())
    return ids


def stalled_deliveries(now: datetime | None = None) -> list[int]:
    """Deliveries whose task was lost (queued or due for retry long ago, or claimed by a worker
    that died), marked as queued again now; the claim makes a duplicate task harmless."""
    now = now or timezone.now()
    queued_before = now - timedelta(seconds=settings.DIGEST_REQUEUE_AFTER_SECONDS)
    claimed_before = now - timedelta(seconds=settings.DIGEST_CLAIM_TIMEOUT_SECONDS)
    stalled = Delivery.objects.filter(
        Q(status=Delivery.Status.PLANNED)
        & (Q(next_attempt_at__lte=queued_before) | Q(next_attempt_at__isnull=True))
        & Q(created_at__lte=queued_before)
        | Q(status=Delivery.Status.SENDING, claimed_at__lte=claimed_before)
    )
    ids = list(stalled.order_by("pk").values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PLANNED).update(next_attempt_at=now)
    return ids


def retry_failed(delivery_ids: Iterable[int]) -> int:
    """Give failed deliveries a fresh set of attempts; returns how many; send them afterwards.
    A delivery whose ranking failed (it has no papers) is ranked again now."""
    delivery_ids = list(delivery_ids)
    with transaction.atomic():
        failed = Delivery.objects.select_for_update(of=("self",)).filter(
            pk__in=delivery_ids, status=Delivery.Status.FAILED
        )
        unranked = list(
            failed.exclude(
                pk__in=DeliveredPaper.objects.filter(delivery__in=delivery_ids).values("delivery")
            )
            .select_related("subscriber", "run")
            .order_by("pk")
        )
        count = failed.update(
            status=Delivery.Status.PLANNED, attempts=0, error="", next_attempt_at=timezone.now()
        )
        # Ranked as of the moment their round planned for: the digest they were due.
        by_moment: dict[datetime, dict[int, Delivery]] = {}
        for delivery in unranked:
            moment = delivery.run.now if delivery.run else delivery.created_at
            by_moment.setdefault(moment, {})[delivery.subscriber_id] = delivery
        for moment, deliveries in by_moment.items():
            subscribers = [delivery.subscriber for delivery in deliveries.values()]
            record_matches(
                {subscriber_id: d.pk for subscriber_id, d in deliveries.items()},
                *select_papers_apart(subscribers, now=moment),
            )
    return count


def refresh_runs() -> None:
    """Count each unfinished run's outcomes; a run with nothing left to send is finished."""
    for run in DigestRun.objects.filter(finished_at__isnull=True):
        counts = {
            row["status"]: row["n"]
            for row in run.deliveries.values("status").annotate(n=Count("pk"))
        }
        run.sent = counts.get(Delivery.Status.SENT, 0)
        run.failed = counts.get(Delivery.Status.FAILED, 0)
        run.skipped = counts.get(Delivery.Status.SKIPPED, 0)
        pending = counts.get(Delivery.Status.PLANNED, 0) + counts.get(Delivery.Status.SENDING, 0)
        run.finished_at = None if pending else timezone.now()
        if run.status != DigestRun.Status.FAILED:  # a failed round stays failed, with its reason
            run.status = DigestRun.Status.RUNNING if pending else DigestRun.Status.FINISHED
        run.save(update_fields=["sent", "failed", "skipped", "finished_at", "status"])


def chunked(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), max(size, 1)):
        yield list(ids[start : start + size])
