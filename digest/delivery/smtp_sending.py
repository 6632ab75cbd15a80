"""Sending a claimed chunk over SMTP, each message handed over once, even when workers are killed.

An SMTP server accepts a message at the "." that ends it, so that line is the handover. For each
message a sender thread writes all of it but the "." while this thread composes the next one;
then this thread marks the message sent in an UPDATE that also finds its claim still ours
(claims.Fence.mark_sent_if_ours), writes the "." (smtp_gate), and commits. A worker killed before
the "." has handed over nothing (the server drops a message cut short, the mark rolls back) and
the next worker sends it; killed once its COMMIT is written, both the message and its mark stand.
The window left is the few instructions between writing the "." and writing the COMMIT, with no
wait between them: a kill there sends the message again, with the same Message-ID. It relies on
the server keeping a message whose "." it has read though the client is gone, as Postfix does. A
server that refuses the message after its "." has the mark taken back
(send_results.record_failure), to be retried or failed as any refusal.

The next message is composed in this thread, not in one of its own (ahead.py, for ESP APIs):
a composing thread holding the interpreter would keep this one from writing the "." and the
COMMIT for up to a switch interval (5 ms), a wider window than the rest of the round trip.
"""

import logging
import smtplib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import EmailMessage
from django.db import transaction
from django.utils import timezone

from digest.delivery import send_rate
from digest.delivery.claims import Fence
from digest.delivery.messages import Digest, compose, serialize_now
from digest.delivery.outcomes import Sent
from digest.delivery.send_results import Outcome, SendResult, record_failure
from digest.delivery.smtp_gate import Gate, send_gated

logger = logging.getLogger(__name__)


def send_over_smtp(
    connection: EmailBackend,
    digests: Sequence[Digest],
    *,
    fence: Fence,
    results: dict[int, SendResult],
    handed_over: set[int],
) -> None:
    """Send `digests` (claimed by `fence`) through one SMTP connection, reopened after an error;
    each outcome goes into `results`, each message handed over into `handed_over`."""
    with ThreadPoolExecutor(max_workers=1) as sender:
        connection.open()
        in_flight: tuple[Digest, Future, bool] | None = None
        upcoming = _composed(digests[0]) if digests else None
        for position, digest in enumerate(digests):
            message = upcoming
            delivery = digest.delivery
            if isinstance(message, Exception):
                results[delivery.pk] = record_failure(
                    delivery, fence.token, message, what="composing failed"
                )
                upcoming = _composed(digests[position + 1]) if position + 1 < len(digests) else None
                continue
            if in_flight:
                results[in_flight[0].delivery.pk] = _settle(*in_flight, fence=fence)
                if results[in_flight[0].delivery.pk].outcome in (Outcome.RETRY, Outcome.FAILED):
                    _reconnect(connection)  # a broken connection must not fail the rest
                in_flight = None
            send_rate.take(1)  # waits for the global rate; SendRateExceeded puts the rest back
            gate = Gate()
            handover = sender.submit(send_gated, connection, message, gate)
            upcoming = _composed(digests[position + 1]) if position + 1 < len(digests) else None
            if not gate.reached():  # the server refused it before its end: nothing accepted
                in_flight = (digest, handover, False)
            elif (passed := _let_through(gate, fence, _sent(digest, message))) is not None:
                if passed:
                    handed_over.add(delivery.pk)
                in_flight = (digest, handover, passed)  # not passed: its "." could not be written
            else:
                logger.warning("delivery %s was taken over before it was sent", delivery.pk)
                handover.exception()  # Withheld: its connection is closed
                _reconnect(connection)
                results[delivery.pk] = SendResult(Outcome.NOT_CLAIMED, error="taken over")
        if in_flight:
            results[in_flight[0].delivery.pk] = _settle(*in_flight, fence=fence)


def _let_through(gate: Gate, fence: Fence, sent: Sent) -> bool | None:
    """Mark the message sent if its claim is still ours and write its ".", in one transaction
    whose COMMIT follows the "." at once. Killed before the ".", the mark rolls back and the
    server drops the message cut short; once the COMMIT is written, PostgreSQL commits it though
    the worker is gone. Between the two writes the worker waits for nothing. True: let through;
    False: the "." could not be written (the mark rolled back); None: taken over (withheld)."""
    passed = None
    try:
        with transaction.atomic():
            if fence.mark_sent_if_ours(sent, timezone.now()):
                passed = gate.open()
                if not passed:
                    transaction.set_rollback(True)
    finally:
        if passed is None:
            gate.shut()
    return passed


def _composed(digest: Digest) -> EmailMessage | Exception:
    try:
        message = compose(digest)
        serialize_now(message)
    except Exception as error:  # noqa: BLE001 - recorded on its delivery
        return error
    return message


def _sent(digest: Digest, message: EmailMessage) -> Sent:
    return Sent(
        digest.delivery.pk,
        sent_at=timezone.now(),
        message_id=message.extra_headers["Message-ID"],
        esp_message_id="",
    )


def _settle(digest: Digest, handover: Future, marked_sent: bool, *, fence: Fence) -> SendResult:
    """Wait for the server's answer on a message; a refusal is recorded (and a mark taken back)."""
    try:
        handover.result()
        if not marked_sent:
            raise smtplib.SMTPException("the message never came to its end")
    except Exception as error:  # noqa: BLE001 - every failure is recorded on its delivery
        return record_failure(digest.delivery, fence.token, error, marked_sent=marked_sent)
    return SendResult(Outcome.SENT)


def _reconnect(connection: EmailBackend) -> None:
    connection.close()
    connection.open()
