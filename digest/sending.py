"""Planning deliveries and sending each one once.

The database is the lock (like healthchecks' sendreports): a delivery is unique per subscriber and
period, and is claimed with a conditional UPDATE (planned -> sending) before anything is sent, so
a retried or redelivered task finds nothing to do. A claim whose worker died is taken over after
DIGEST_CLAIM_TIMEOUT_SECONDS. Every attempt of a delivery carries the same Message-ID.

Guarantee: exactly one delivery row per subscriber and period, marked sent at most once. The
handoff to the ESP is at-least-once: only if a worker dies after the ESP accepted a message and
before the "sent" UPDATE commits (a window of one round trip) is the message handed over again,
with the same Message-ID, which mailbox providers use to drop the duplicate.
"""

import functools
import logging
import random
import secrets
import smtplib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.policy import Compat32
from enum import StrEnum

import requests
from anymail.exceptions import AnymailError, AnymailRecipientsRefused, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import EmailMessage
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from digest.composing import compose_digest, list_id_domain
from digest.ingest.runs import fail_stale_runs
from digest.matching import Match, select_papers
from digest.models import DeliveredPaper, Delivery, DigestRun, Paper
from digest.periods import digest_period
from subscriptions import consent
from subscriptions.models import Subscriber, SuppressionEvent
from subscriptions.selectors import subscribers_for_digests

logger = logging.getLogger(__name__)

PERMANENT_HTTP = range(400, 500)
# What composing reads from a paper (see composing.paper_block); the rest stays in the database.
COMPOSED_PAPER_FIELDS = [
    "title",
    "abstract",
    "authors",
    "author_count",
    "arxiv_id",
    "url",
    "pdf_url",
    "upvotes",
]


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_CLAIMED = "not claimed"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    retry_in: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class ReportRow:
    email: str
    status: str
    papers: int
    top_title: str
    error: str = ""


# Planning ------------------------------------------------------------------------------------


def due_subscribers(now: datetime) -> list[tuple[Subscriber, object]]:
    """Active subscribers whose send hour has come at `now` and who have no delivery for that
    period yet, with the period (their local date)."""
    due = []
    for subscriber in subscribers_for_digests():
        period = digest_period(subscriber, now)
        if period is not None:
            due.append((subscriber, period))
    periods = {period for _, period in due}
    existing = set(
        Delivery.objects.filter(period__in=periods).values_list("subscriber_id", "period")
    )
    return [(s, period) for s, period in due if (s.pk, period) not in existing]


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


def _record_matches(
    deliveries: Mapping[int, int], matches: Mapping[int, list[Match]], failures: Mapping[int, str]
) -> None:
    """Store each delivery's papers ({subscriber id: delivery id}); one with nothing relevant is
    skipped, one whose ranking failed is failed with the reason."""
    DeliveredPaper.objects.bulk_create(
        [
            DeliveredPaper(
                delivery_id=delivery_id,
                paper_id=match.paper_id,
                position=position,
                score=match.score,
                pinned=match.pinned,
                topic=match.topic[:500],
                matched_terms=list(match.matched_terms),
                why=match.why[:500],
            )
            for subscriber_id, delivery_id in deliveries.items()
            for position, match in enumerate(matches.get(subscriber_id, []), start=1)
        ],
        batch_size=2000,
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


def plan_deliveries(now: datetime) -> DigestRun:
    """Create this round's deliveries and their papers; those with nothing relevant are skipped,
    those whose ranking failed are failed (the others are planned all the same).

    One transaction: a planner that dies leaves nothing half-planned. Concurrent planners are safe:
    the unique (subscriber, period) pair lets only one of them create each delivery."""
    due = due_subscribers(now)
    if not due:
        return DigestRun(now=now)  # not saved: a tick with nothing due leaves no row behind
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
        _record_matches(created, matches, failures)
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


def plan_round(now: datetime) -> DigestRun:
    """plan_deliveries, or, if the round cannot be planned at all, a failed DigestRun with the
    reason (deliveries of earlier rounds can still go out)."""
    try:
        return plan_deliveries(now)
    except Exception as error:
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
            _record_matches(
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


# Sending -------------------------------------------------------------------------------------


def message_id_for(delivery: Delivery) -> str:
    """The same Message-ID on every attempt of a delivery, never reused by another one."""
    stamp = delivery.created_at.strftime("%Y%m%d%H%M%S%f")
    return f"<digest.{delivery.pk}.{stamp}@{list_id_domain()}>"


def is_transient(error: BaseException) -> bool:
    """Worth trying again later: timeouts, connection errors, 429 and 5xx answers."""
    if isinstance(error, AnymailRecipientsRefused | smtplib.SMTPRecipientsRefused):
        return not refuses_recipient(error)  # an SMTP 4xx refusal (greylisting) passes later
    if isinstance(error, AnymailRequestsAPIError):
        status = error.status_code
        return status is None or status in (408, 429) or status >= 500
    if isinstance(error, AnymailError):
        return False
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, smtplib.SMTPException | OSError | requests.RequestException)


def refuses_recipient(error: BaseException) -> bool:
    """The ESP or mail server refuses the address itself for good (no such mailbox, an address
    the ESP has marked inactive)."""
    if isinstance(error, AnymailRecipientsRefused):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    return False


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempts-1), capped."""
    ceiling = min(
        settings.DIGEST_RETRY_MAX_SECONDS,
        settings.DIGEST_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
    )
    return random.uniform(ceiling / 2, ceiling)


# The claim and the release are written as plain SQL, as the ORM would write them: the ORM has
# no UPDATE ... RETURNING, and building its query costs ten times as much as running it.


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


def _value(name: str, value):
    return Delivery._meta.get_field(name).get_db_prep_save(value, connection)


def _claim(delivery_ids: Sequence[int], now: datetime) -> set[int]:
    """planned (and due) -> sending, or take over a claim older than the timeout, for a whole
    chunk in one UPDATE; returns the ids that are ours (another worker's claims are left alone)."""
    if not delivery_ids:
        return set()
    stale = now - timedelta(seconds=settings.DIGEST_CLAIM_TIMEOUT_SECONDS)
    status, claimed_at, next_attempt_at = map(_column, ["status", "claimed_at", "next_attempt_at"])
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)}"
        f" SET {status} = %s, {claimed_at} = %s, {_column('attempts')} = {_column('attempts')} + 1"
        f" WHERE {_column('id')} IN ({', '.join(['%s'] * len(delivery_ids))}) AND ("
        f"({status} = %s AND ({next_attempt_at} IS NULL OR {next_attempt_at} <= %s))"
        f" OR ({status} = %s AND {claimed_at} < %s))"
        f" RETURNING {_column('id')}"
    )
    params = [
        Delivery.Status.SENDING.value,
        _value("claimed_at", now),
        *delivery_ids,
        Delivery.Status.PLANNED.value,
        _value("next_attempt_at", now + timedelta(seconds=1)),
        Delivery.Status.SENDING.value,
        _value("claimed_at", stale),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _release(delivery: Delivery, claimed_at: datetime, **fields) -> bool:
    """Update our own claim only: a claim taken over by another worker is no longer ours."""
    assignments = ", ".join(f"{_column(name)} = %s" for name in fields)
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} SET {assignments}"
        f" WHERE {_column('id')} = %s AND {_column('status')} = %s"
        f" AND {_column('claimed_at')} = %s"
    )
    params = [_value(name, value) for name, value in fields.items()]
    params += [delivery.pk, Delivery.Status.SENDING.value, _value("claimed_at", claimed_at)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


@dataclass(frozen=True)
class Digest:
    """A delivery with what composing it needs: its matches (best first) and their papers."""

    delivery: Delivery
    matches: list[Match]
    papers: Mapping[int, Paper]
    hidden: tuple[int, ...] = ()  # papers planned for it that the editors hid since


def digests_for(deliveries: Sequence[Delivery]) -> list[Digest]:
    """Two queries whatever the number of deliveries; a paper shared by many digests is loaded
    once. A paper hidden since the digest was planned is left out of it."""
    rows = list(
        DeliveredPaper.objects.filter(delivery__in=[delivery.pk for delivery in deliveries])
        .order_by("delivery_id", "position")
        .values_list("delivery_id", "paper_id", "score", "pinned", "topic", "matched_terms", "why")
    )
    papers = Paper.objects.only(*COMPOSED_PAPER_FIELDS, "hidden").in_bulk({row[1] for row in rows})
    matches: dict[int, list[Match]] = {delivery.pk: [] for delivery in deliveries}
    hidden: dict[int, list[int]] = {delivery.pk: [] for delivery in deliveries}
    for delivery_id, paper_id, score, pinned, topic, terms, why in rows:
        if papers[paper_id].hidden:
            hidden[delivery_id].append(paper_id)
        else:
            matches[delivery_id].append(Match(paper_id, score, pinned, topic, tuple(terms), why))
    return [
        Digest(delivery, matches[delivery.pk], papers, tuple(hidden[delivery.pk]))
        for delivery in deliveries
    ]


def load_digests(delivery_ids: Iterable[int]) -> dict[int, Digest]:
    """The deliveries with their subscriber, matches and papers, in three queries."""
    deliveries = Delivery.objects.select_related("subscriber").in_bulk(list(delivery_ids))
    return {digest.delivery.pk: digest for digest in digests_for(list(deliveries.values()))}


def compose(digest: Digest) -> EmailMessage:
    delivery = digest.delivery
    return compose_digest(
        delivery.subscriber,
        digest.matches,
        period=delivery.period,
        papers=digest.papers,
        message_id=message_id_for(delivery),
    )


def delivery_message(delivery: Delivery) -> EmailMessage:
    return compose(digests_for([delivery])[0])


def send_delivery(delivery_id: int, *, connection=None) -> SendResult:
    """Claim, compose, send and record one delivery; does nothing if it is not ours to send."""
    return send_deliveries([delivery_id], connection=connection)[delivery_id]


def send_deliveries(delivery_ids: Sequence[int], *, connection=None) -> dict[int, SendResult]:
    """Claim a chunk of deliveries in one UPDATE and send those that are ours through one ESP/SMTP
    connection, reopened after an error.

    While the server answers for one message the next one is composed: a sender thread (no
    database) hands each message over, and this thread records the outcome before handing over
    the next, so at most one message at a time is accepted but not yet marked sent."""
    connection = connection or get_connection()
    now = timezone.now()
    claimed = _claim(delivery_ids, now)
    results = {pk: SendResult(Outcome.NOT_CLAIMED) for pk in delivery_ids if pk not in claimed}
    digests = load_digests(claimed)
    handed_over: set[int] = set()
    try:
        with ThreadPoolExecutor(max_workers=1) as sender:
            connection.open()
            in_flight = None
            for digest in (digests[pk] for pk in delivery_ids if pk in claimed):
                delivery = digest.delivery
                if digest.hidden:  # its record says what the reader got
                    DeliveredPaper.objects.filter(
                        delivery=delivery, paper_id__in=digest.hidden
                    ).delete()
                reason = ""
                if delivery.subscriber.status != Subscriber.Status.ACTIVE:
                    reason = f"subscriber is {delivery.subscriber.status} now"
                elif not digest.matches:
                    reason = "the editors hid every paper of it after it was planned"
                if reason:
                    _release(delivery, now, status=Delivery.Status.SKIPPED, error=reason)
                    results[delivery.pk] = SendResult(Outcome.SKIPPED, error=reason)
                    continue
                try:
                    message = compose(digest)
                    if isinstance(connection, SMTPBackend):
                        serialize_now(message)
                except Exception as error:  # noqa: BLE001 - recorded on its delivery
                    results[delivery.pk] = _record_failure(
                        delivery, now, error, what="composing failed"
                    )
                    continue
                if in_flight:
                    results[in_flight[0].pk] = _settle(*in_flight, claimed_at=now)
                    if results[in_flight[0].pk].outcome in (Outcome.RETRY, Outcome.FAILED):
                        _reconnect(connection)  # a broken connection must not fail the rest
                handed_over.add(delivery.pk)
                in_flight = (delivery, message, sender.submit(connection.send_messages, [message]))
            if in_flight:
                results[in_flight[0].pk] = _settle(*in_flight, claimed_at=now)
    except Exception as error:
        # The connection could not be (re)opened: what was not handed over is tried later.
        for digest in digests.values():
            if digest.delivery.pk not in handed_over | results.keys():
                results[digest.delivery.pk] = _put_back(digest.delivery, now, error)
        if not is_transient(error):
            raise
    finally:
        connection.close()
    return results


def serialize_now(message: EmailMessage) -> None:
    """Build the MIME message and its bytes here, once: Django's SMTP backend asks for them
    (message().as_bytes(linesep="\\r\\n")) in the sender thread, which then only waits on the
    server instead of competing with composing for the interpreter."""
    mime = message.message()
    mime.policy = SHORT_HEADERS_AS_IS
    if mime.is_multipart():
        mime.set_boundary(fresh_boundary(message))
    mime.as_bytes = functools.cache(mime.as_bytes)
    mime.as_bytes(linesep="\r\n")
    message.message = lambda: mime


class ShortHeadersAsIs(Compat32):
    """Python's compat32 email policy, which Django's messages use, except that a header that
    fits on its line in printable ASCII is written as it is. Compat32 runs every header through
    email.header.Header, which leaves such a value unchanged and costs a tenth of serializing a
    digest."""

    def _fold(self, name: str, value, sanitize: bool) -> str:
        limit = self.max_line_length or 78
        if (
            isinstance(value, str)
            and len(name) + len(value) + 2 <= limit
            and value.isascii()
            and value.isprintable()
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


SHORT_HEADERS_AS_IS = ShortHeadersAsIs()


def fresh_boundary(message: EmailMessage) -> str:
    """A MIME boundary that none of the message's parts contains. The standard library picks a
    random one and then compiles a regular expression per message to prove it unused, which
    costs a sixth of serializing a digest; a 128-bit random token checked with `in` is enough."""
    parts = [message.body, *(content for content, _ in getattr(message, "alternatives", []))]
    while True:
        boundary = f"=={secrets.token_hex(16)}=="
        if not any(boundary in part for part in parts):
            return boundary


def _reconnect(connection) -> None:
    connection.close()
    connection.open()


def _settle(delivery: Delivery, message: EmailMessage, handover, *, claimed_at) -> SendResult:
    """Wait for the server's answer on a message; mark it sent (ours only) or record the error."""
    try:
        handover.result()
    except Exception as error:  # noqa: BLE001 - every failure is recorded on its delivery
        return _record_failure(delivery, claimed_at, error)
    esp_id = getattr(getattr(message, "anymail_status", None), "message_id", None)
    if not _release(
        delivery,
        claimed_at,
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
        message_id=message.extra_headers["Message-ID"],
        esp_message_id="" if esp_id is None else str(esp_id)[:255],
        error="",
    ):
        logger.warning("delivery %s was taken over while it was being sent", delivery.pk)
    return SendResult(Outcome.SENT)


def _put_back(delivery: Delivery, claimed_at: datetime, error: Exception) -> SendResult:
    """Release a claimed delivery that was never handed over, without counting an attempt."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    delay = retry_delay(1)
    _release(
        delivery,
        claimed_at,
        status=Delivery.Status.PLANNED,
        attempts=delivery.attempts - 1,
        error=reason,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return SendResult(Outcome.RETRY, retry_in=delay, error=reason)


def _record_failure(
    delivery: Delivery, claimed_at: datetime, error: Exception, *, what: str = ""
) -> SendResult:
    reason = failure_reason(what, error) if what else f"{type(error).__name__}: {error}"[:2000]
    if is_transient(error) and delivery.attempts < settings.DIGEST_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        _release(
            delivery,
            claimed_at,
            status=Delivery.Status.PLANNED,
            error=reason,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        logger.info("delivery %s: transient error, retry in %.1fs: %s", delivery.pk, delay, reason)
        return SendResult(Outcome.RETRY, retry_in=delay, error=reason)
    if not is_transient(error) and not isinstance(error, AnymailError | smtplib.SMTPException):
        logger.exception("delivery %s failed", delivery.pk, exc_info=error)
    _release(delivery, claimed_at, status=Delivery.Status.FAILED, error=reason)
    if refuses_recipient(error):
        # As a hard bounce reported by webhook would: no more mail to a dead address.
        consent.suppress(
            delivery.subscriber,
            kind=SuppressionEvent.Kind.HARD_BOUNCE,
            source=SuppressionEvent.Source.SENDING,
            detail=reason,
        )
    return SendResult(Outcome.FAILED, error=reason)


# One round in-process ------------------------------------------------------------------------


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
