"""Sending each planned delivery once.

Guarantee: exactly one delivery row per subscriber and period, marked sent at most once (see
claims). The handoff to the ESP is at-least-once: only if a worker dies (or is paused past the
claim timeout, or its clock jumps past it) after the ESP accepted messages and before the "sent"
UPDATE commits (a window of DIGEST_MARK_SENT_EVERY messages, one by default; of a chunk with 0, the
price of one write per chunk instead of one per message) are they handed over again, with the same
Message-ID, which mailbox providers use to drop the duplicate. Each claim is fenced: a worker whose
claim was taken over hands over nothing more.
"""

import logging
import smtplib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone

from digest.delivery import send_rate
from digest.delivery.ahead import composed_ahead
from digest.delivery.claims import Fence, claim, new_token, release
from digest.delivery.messages import Digest, load_digests
from digest.delivery.outcomes import Sent, mark_sent
from digest.delivery.planning import failure_reason
from digest.delivery.retries import is_transient, refuses_recipient, retry_delay
from digest.delivery.smtp_gate import Gate, send_gated
from digest.models import DeliveredPaper, Delivery
from subscriptions import consent
from subscriptions.models import Subscriber, SuppressionEvent

logger = logging.getLogger(__name__)


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


def send_delivery(delivery_id: int, *, connection=None) -> SendResult:
    """Claim, compose, send and record one delivery; does nothing if it is not ours to send."""
    return send_deliveries([delivery_id], connection=connection)[delivery_id]


def send_deliveries(delivery_ids: Sequence[int], *, connection=None) -> dict[int, SendResult]:
    """Claim a chunk of deliveries in one UPDATE and send those that are ours through one ESP/SMTP
    connection, reopened after an error.

    While the server answers for one message and the database for another, the next one is
    composed (in a thread of its own: ahead.py): a sender thread (no database) hands each message
    over, and this thread records the outcome before handing over the next. Right before each
    handover the fence checks that the claim is still ours (and keeps it alive). The deliveries
    the ESP accepted are marked sent every DIGEST_MARK_SENT_EVERY messages, in the fence's UPDATE
    (one commit between two handovers), or together at the end of the chunk. Over SMTP a message
    travels while that UPDATE runs, all but the "." that ends it (smtp_gate)."""
    connection = connection or get_connection()
    from digest.delivery import batches  # builds on this module

    if batches.batch_size(connection):
        return batches.send_batched(delivery_ids, connection)
    token = new_token()
    now = timezone.now()
    claimed = claim(delivery_ids, now, token)
    fence = Fence([pk for pk in delivery_ids if pk in claimed], token, now)
    results = {pk: SendResult(Outcome.NOT_CLAIMED) for pk in delivery_ids if pk not in claimed}
    digests = load_digests(claimed)
    handed_over: set[int] = set()
    sent: list[Sent] = []
    try:
        to_send = sendable(
            [digests[pk] for pk in delivery_ids if pk in claimed], token=token, results=results
        )
        serialize = isinstance(connection, SMTPBackend)
        with ThreadPoolExecutor(max_workers=1) as sender:
            connection.open()
            in_flight = None
            for digest, composing in composed_ahead(to_send, serialize=serialize):
                delivery = digest.delivery
                try:
                    message = composing.result()
                except Exception as error:  # noqa: BLE001 - recorded on its delivery
                    results[delivery.pk] = _record_failure(
                        delivery, token, error, what="composing failed"
                    )
                    continue
                if in_flight:
                    results[in_flight[0].pk] = _settle(*in_flight, token=token, sent=sent)
                    if results[in_flight[0].pk].outcome in (Outcome.RETRY, Outcome.FAILED):
                        _reconnect(connection)  # a broken connection must not fail the rest
                    in_flight = None
                every = settings.DIGEST_MARK_SENT_EVERY or len(delivery_ids)
                marking = list(sent) if len(sent) >= every else []
                send_rate.take(1)  # waits for the global rate; SendRateExceeded puts the rest back
                handover = _hand_over(
                    sender, connection, message, delivery=delivery, fence=fence, marking=marking
                )
                del sent[: len(marking)]
                if handover is None:
                    results[delivery.pk] = SendResult(Outcome.NOT_CLAIMED, error="taken over")
                    continue
                handed_over.add(delivery.pk)
                in_flight = (delivery, message, handover)
            if in_flight:
                results[in_flight[0].pk] = _settle(*in_flight, token=token, sent=sent)
    except Exception as error:
        # The connection could not be (re)opened: what was not handed over is tried later.
        for digest in digests.values():
            if digest.delivery.pk not in handed_over | results.keys():
                results[digest.delivery.pk] = _put_back(digest.delivery, token, error)
        if not is_transient(error):
            raise
    finally:
        connection.close()
        _record_sent(sent, token)
    return results


def sendable(
    digests: Sequence[Digest], *, token: str, results: dict[int, SendResult]
) -> list[Digest]:
    """The digests still to send, in order; each of the others is released as skipped, its
    reason in `results` (the reader left, or the editors hid every paper since planning)."""
    ready = []
    for digest in digests:
        delivery = digest.delivery
        if digest.hidden:  # its record says what the reader got
            DeliveredPaper.objects.filter(delivery=delivery, paper_id__in=digest.hidden).delete()
        reason = ""
        if delivery.subscriber.status != Subscriber.Status.ACTIVE:
            reason = f"subscriber is {delivery.subscriber.status} now"
        elif not digest.matches:
            reason = "the editors hid every paper of it after it was planned"
        if reason:
            release(delivery, token, status=Delivery.Status.SKIPPED, error=reason)
            results[delivery.pk] = SendResult(Outcome.SKIPPED, error=reason)
        else:
            ready.append(digest)
    return ready


def _reconnect(connection) -> None:
    connection.close()
    connection.open()


def _hand_over(
    sender: ThreadPoolExecutor,
    connection,
    message: EmailMessage,
    *,
    delivery: Delivery,
    fence: Fence,
    marking: list[Sent],
) -> Future | None:
    """Hand `message` over to the sender thread once the fence has found its claim still ours,
    in the UPDATE that also marks `marking` sent; None if it was taken over. Over SMTP the
    transfer starts at once and only its final "." waits for that UPDATE (smtp_gate)."""
    gate = Gate() if isinstance(connection, SMTPBackend) else None
    early = sender.submit(send_gated, connection, message, gate) if gate else None
    try:
        marked = fence.check([delivery.pk], timezone.now(), marking=marking)
        if gate and delivery.pk in marked.held:
            gate.open()
    finally:
        if gate:
            gate.shut()  # withheld, unless let through above
    for delivery_id in marked.taken_over:
        logger.warning("delivery %s was taken over while it was being sent", delivery_id)
    if delivery.pk in marked.held:
        return early or sender.submit(connection.send_messages, [message])
    logger.warning("delivery %s was taken over before it was sent", delivery.pk)
    if early:
        early.exception()  # Withheld: its connection is closed
        _reconnect(connection)
    return None


def _settle(
    delivery: Delivery, message: EmailMessage, handover, *, token: str, sent: list[Sent]
) -> SendResult:
    """Wait for the server's answer on a message; note it for marking sent, or record the error."""
    try:
        handover.result()
    except Exception as error:  # noqa: BLE001 - every failure is recorded on its delivery
        return _record_failure(delivery, token, error)
    esp_id = getattr(getattr(message, "anymail_status", None), "message_id", None)
    sent.append(
        Sent(
            delivery.pk,
            sent_at=timezone.now(),
            message_id=message.extra_headers["Message-ID"],
            esp_message_id="" if esp_id is None else str(esp_id)[:255],
        )
    )
    return SendResult(Outcome.SENT)


def _record_sent(sent: list[Sent], token: str) -> None:
    """One UPDATE for the chunk. A worker killed before it runs leaves these claimed: they are
    sent again after DIGEST_CLAIM_TIMEOUT_SECONDS, with the same Message-ID."""
    for delivery_id in mark_sent(sent, token).taken_over:
        logger.warning("delivery %s was taken over while it was being sent", delivery_id)


def _put_back(delivery: Delivery, token: str, error: Exception) -> SendResult:
    """Release a claimed delivery that was never handed over, without counting an attempt."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    delay = retry_delay(1)
    release(
        delivery,
        token,
        status=Delivery.Status.PLANNED,
        attempts=delivery.attempts - 1,
        error=reason,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return SendResult(Outcome.RETRY, retry_in=delay, error=reason)


def _record_failure(
    delivery: Delivery, token: str, error: Exception, *, what: str = ""
) -> SendResult:
    reason = failure_reason(what, error) if what else f"{type(error).__name__}: {error}"[:2000]
    if is_transient(error) and delivery.attempts < settings.DIGEST_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        release(
            delivery,
            token,
            status=Delivery.Status.PLANNED,
            error=reason,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        logger.info("delivery %s: transient error, retry in %.1fs: %s", delivery.pk, delay, reason)
        return SendResult(Outcome.RETRY, retry_in=delay, error=reason)
    if not is_transient(error) and not isinstance(error, AnymailError | smtplib.SMTPException):
        logger.exception("delivery %s failed", delivery.pk, exc_info=error)
    release(delivery, token, status=Delivery.Status.FAILED, error=reason)
    if refuses_recipient(error):
        # As a hard bounce reported by webhook would: no more mail to a dead address.
        consent.suppress(
            delivery.subscriber,
            kind=SuppressionEvent.Kind.HARD_BOUNCE,
            source=SuppressionEvent.Source.SENDING,
            detail=reason,
        )
    return SendResult(Outcome.FAILED, error=reason)
