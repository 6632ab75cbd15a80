"""Sending a claimed chunk over SMTP, each message handed over once, even when workers are killed.

An SMTP server accepts a message at the "." that ends it, so that line is the handover. Messages
go in rounds, one per connection (DIGEST_SMTP_CONNECTIONS): sender threads write each message
but its "." while this thread composes the next round; then one UPDATE marks those whose claim is
still ours sent (claims.Fence.mark_sent_if_ours), this thread writes their "." (smtp_gate), and
the COMMIT right after. A worker killed before the "." has handed over nothing (the server drops
a message cut short, the mark rolls back) and the next worker sends it; killed once its COMMIT is
written, both the messages and their marks stand. The window left is the few instructions
between writing the first "." and writing the COMMIT, with no wait between them: a kill there
sends those messages again, with the same Message-ID. It relies on the server keeping a message
whose "." it has read though the client is gone, as Postfix does. A message the server refuses
after its "." has its mark taken back (send_results.record_failure), to be retried or failed as
any refusal.

The next round is composed in this thread, not in one of its own (ahead.py, for ESP APIs): a
composing thread holding the interpreter would keep this one from writing the "." and the COMMIT
for up to a switch interval (5 ms), a wider window than the rest of the round trip.
"""

import logging
import smtplib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import EmailMessage
from django.db import transaction
from django.utils import timezone

from digest.delivery import send_rate
from digest.delivery.claims import Fence, release
from digest.delivery.messages import Digest, compose, serialize_now
from digest.delivery.outcomes import Sent
from digest.delivery.send_results import Outcome, SendResult, record_failure
from digest.delivery.smtp_gate import Gate, send_gated
from digest.models import Delivery

logger = logging.getLogger(__name__)


@dataclass
class Handover:
    """One message of a round on its connection: its gate, the sender thread's work, and whether
    it was marked sent before its "." went."""

    digest: Digest
    message: EmailMessage
    lane: EmailBackend
    gate: Gate
    work: Future
    marked_sent: bool = False


def send_over_smtp(
    connection: EmailBackend,
    digests: Sequence[Digest],
    *,
    fence: Fence,
    results: dict[int, SendResult],
    handed_over: set[int],
) -> None:
    """Send `digests` (claimed by `fence`) in rounds over `connection` and as many more like it
    as DIGEST_SMTP_CONNECTIONS asks, each reopened after an error; each outcome goes into
    `results`, each message handed over into `handed_over`."""
    more = max(settings.DIGEST_SMTP_CONNECTIONS, 1) - 1
    lanes = [connection, *(_like(connection) for _ in range(more))]
    rounds = [digests[start : start + len(lanes)] for start in range(0, len(digests), len(lanes))]
    connection.open()  # a server that is down puts the chunk back (sending.send_deliveries)
    try:
        with ThreadPoolExecutor(max_workers=len(lanes)) as senders:
            upcoming = _composed(rounds[0], fence, results) if rounds else []
            for number in range(len(rounds)):
                for _ in upcoming:
                    send_rate.take(1)  # the global rate; SendRateExceeded puts the rest back
                handovers = []
                try:
                    for lane, (digest, message) in zip(lanes, upcoming, strict=False):
                        gate = Gate()
                        work = senders.submit(send_gated, lane, message, gate)
                        handovers.append(Handover(digest, message, lane, gate, work))
                    following = rounds[number + 1] if number + 1 < len(rounds) else []
                    upcoming = _composed(following, fence, results)
                    _let_through(handovers, fence, results)
                finally:
                    for handover in handovers:
                        handover.gate.release()  # withheld, unless let through
                handed_over.update(h.digest.delivery.pk for h in handovers if h.marked_sent)
                _settle(handovers, fence, results)
    finally:
        for lane in lanes[1:]:
            lane.close()


def _like(connection: EmailBackend) -> EmailBackend:
    """Another connection to the same server with the same settings."""
    return type(connection)(
        host=connection.host,
        port=connection.port,
        username=connection.username,
        password=connection.password,
        use_tls=connection.use_tls,
        use_ssl=connection.use_ssl,
        timeout=connection.timeout,
        ssl_keyfile=connection.ssl_keyfile,
        ssl_certfile=connection.ssl_certfile,
        fail_silently=connection.fail_silently,
    )


def _composed(
    digests: Sequence[Digest], fence: Fence, results: dict[int, SendResult]
) -> list[tuple[Digest, EmailMessage]]:
    """The round's messages, composed and serialized; one that fails is recorded as failed."""
    composed = []
    for digest in digests:
        try:
            message = compose(digest)
            serialize_now(message)
        except Exception as error:  # noqa: BLE001 - recorded on its delivery
            results[digest.delivery.pk] = record_failure(
                digest.delivery, fence.token, error, what="composing failed"
            )
            continue
        composed.append((digest, message))
    return composed


def _let_through(
    handovers: Sequence[Handover], fence: Fence, results: dict[int, SendResult]
) -> None:
    """Once every message of the round is at its gate (or refused before it), mark those still
    ours sent and write their "." in one transaction, whose COMMIT follows the last "." at once.
    The others are withheld (taken over by another worker). A "." that could not be written has
    its mark undone before the COMMIT (one more UPDATE, only then), and fails its message like
    any broken connection (_settle)."""
    arrived = [handover for handover in handovers if handover.gate.reached()]
    sent = [_sent(handover) for handover in arrived]
    with transaction.atomic():
        ours = fence.mark_sent_if_ours(sent, timezone.now()) if sent else set()
        for handover in arrived:
            if handover.digest.delivery.pk in ours:
                handover.marked_sent = handover.gate.let_through()
        for handover in arrived:
            if handover.digest.delivery.pk in ours and not handover.marked_sent:
                _unmark(handover.digest.delivery, fence.token)
    for handover in arrived:
        if handover.digest.delivery.pk not in ours:
            pk = handover.digest.delivery.pk
            logger.warning("delivery %s was taken over before it was sent", pk)
            results[pk] = SendResult(Outcome.NOT_CLAIMED, error="taken over")


def _unmark(delivery: Delivery, token: str) -> None:
    """Back to being sent by us: its mark must not commit, or a worker killed before _settle
    records the failure would leave a message marked sent that no server has."""
    release(delivery, token, was=Delivery.Status.SENT, status=Delivery.Status.SENDING, sent_at=None)


def _sent(handover: Handover) -> Sent:
    return Sent(
        handover.digest.delivery.pk,
        sent_at=timezone.now(),
        message_id=handover.message.extra_headers["Message-ID"],
        esp_message_id="",
    )


def _settle(handovers: Sequence[Handover], fence: Fence, results: dict[int, SendResult]) -> None:
    """Wait for the server's answers; record refusals (taking back their marks) and reopen the
    connections that failed, so that a broken one fails no more of the chunk."""
    for handover in handovers:
        delivery = handover.digest.delivery
        try:
            handover.work.result()
            if not handover.marked_sent:
                raise smtplib.SMTPException("the message never came to its end")
        except Exception as error:  # noqa: BLE001 - every failure is recorded on its delivery
            if delivery.pk not in results:  # not withheld
                results[delivery.pk] = record_failure(
                    delivery, fence.token, error, marked_sent=handover.marked_sent
                )
            handover.lane.close()  # reopened by its next message
            continue
        results[delivery.pk] = SendResult(Outcome.SENT)
