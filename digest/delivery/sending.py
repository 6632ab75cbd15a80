"""Sending each planned delivery once.

Guarantee: exactly one delivery row per subscriber and period, marked sent at most once (see
claims), and each claim fenced: a worker whose claim was taken over hands over nothing more.
Over SMTP each message is also handed over once: it is marked sent right before the "." that
ends it (smtp_sending). Through an ESP's API the handoff is at-least-once: only if a worker dies
(or is paused past the claim timeout, or its clock jumps past it) after the ESP accepted messages
and before the "sent" UPDATE commits (a window of DIGEST_MARK_SENT_EVERY messages, one by default;
of a chunk with 0, the price of one write per chunk instead of one per message) are they handed
over again, with the same Message-ID, which mailbox providers use to drop the duplicate.
"""

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

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
from digest.delivery.retries import is_transient
from digest.delivery.send_results import Outcome, SendResult, put_back, record_failure
from digest.delivery.smtp_sending import send_over_smtp
from digest.models import DeliveredPaper, Delivery
from subscriptions.models import Subscriber

__all__ = ["Outcome", "SendResult", "send_deliveries", "send_delivery", "sendable"]

logger = logging.getLogger(__name__)


def send_delivery(delivery_id: int, *, connection=None) -> SendResult:
    """Claim, compose, send and record one delivery; does nothing if it is not ours to send."""
    return send_deliveries([delivery_id], connection=connection)[delivery_id]


def send_deliveries(delivery_ids: Sequence[int], *, connection=None) -> dict[int, SendResult]:
    """Claim a chunk of deliveries in one UPDATE and send those that are ours through one ESP/SMTP
    connection, reopened after an error: over SMTP by smtp_sending, through a batching ESP API by
    batches, else here.

    While the ESP answers for one message and the database for another, the next one is composed
    (in a thread of its own: ahead.py): a sender thread (no database) hands each message over, and
    this thread records the outcome before handing over the next. Right before each handover the
    fence checks that the claim is still ours (and keeps it alive). The deliveries the ESP
    accepted are marked sent every DIGEST_MARK_SENT_EVERY messages, in the fence's UPDATE (one
    commit between two handovers), or together at the end of the chunk."""
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
        if isinstance(connection, SMTPBackend):
            send_over_smtp(
                connection, to_send, fence=fence, results=results, handed_over=handed_over
            )
        else:
            _send_through_api(connection, to_send, fence, results, handed_over, sent)
    except Exception as error:
        # The connection could not be (re)opened: what was not handed over is tried later.
        for digest in digests.values():
            if digest.delivery.pk not in handed_over | results.keys():
                results[digest.delivery.pk] = put_back(digest.delivery, token, error)
        if not is_transient(error):
            raise
    finally:
        connection.close()
        _record_sent(sent, token)
    return results


def _send_through_api(
    connection,
    to_send: Sequence[Digest],
    fence: Fence,
    results: dict[int, SendResult],
    handed_over: set[int],
    sent: list[Sent],
) -> None:
    token = fence.token
    with ThreadPoolExecutor(max_workers=1) as sender:
        connection.open()
        in_flight = None
        for digest, composing in composed_ahead(to_send):
            delivery = digest.delivery
            try:
                message = composing.result()
            except Exception as error:  # noqa: BLE001 - recorded on its delivery
                results[delivery.pk] = record_failure(
                    delivery, token, error, what="composing failed"
                )
                continue
            if in_flight:
                results[in_flight[0].pk] = _settle(*in_flight, token=token, sent=sent)
                if results[in_flight[0].pk].outcome in (Outcome.RETRY, Outcome.FAILED):
                    _reconnect(connection)  # a broken connection must not fail the rest
                in_flight = None
            every = settings.DIGEST_MARK_SENT_EVERY or len(fence.chunk)
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
    in the UPDATE that also marks `marking` sent; None if it was taken over."""
    marked = fence.check([delivery.pk], timezone.now(), marking=marking)
    for delivery_id in marked.taken_over:
        logger.warning("delivery %s was taken over while it was being sent", delivery_id)
    if delivery.pk in marked.held:
        return sender.submit(connection.send_messages, [message])
    logger.warning("delivery %s was taken over before it was sent", delivery.pk)
    return None


def _settle(
    delivery: Delivery, message: EmailMessage, handover, *, token: str, sent: list[Sent]
) -> SendResult:
    """Wait for the server's answer on a message; note it for marking sent, or record the error."""
    try:
        handover.result()
    except Exception as error:  # noqa: BLE001 - every failure is recorded on its delivery
        return record_failure(delivery, token, error)
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
