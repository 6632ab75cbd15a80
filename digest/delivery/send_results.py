"""What sending a delivery came to, and how a failure is written on its row: retried later with
backoff when the error is transient, failed for good otherwise (a refused address suppressed)."""

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from anymail.exceptions import AnymailError
from django.conf import settings
from django.utils import timezone

from digest.delivery.claims import release
from digest.delivery.planning import failure_reason
from digest.delivery.retries import is_transient, refuses_recipient, retry_delay
from digest.models import Delivery
from subscriptions import consent
from subscriptions.models import SuppressionEvent

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


def put_back(delivery: Delivery, token: str, error: Exception) -> SendResult:
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


def record_failure(
    delivery: Delivery, token: str, error: Exception, *, what: str = "", marked_sent: bool = False
) -> SendResult:
    """`marked_sent`: the row was marked sent before the server answered (over SMTP, right
    before the "." that ends the message: smtp_sending), and the answer was a refusal."""
    reason = failure_reason(what, error) if what else f"{type(error).__name__}: {error}"[:2000]
    was = Delivery.Status.SENT if marked_sent else Delivery.Status.SENDING
    unsent = {"sent_at": None} if marked_sent else {}
    if is_transient(error) and delivery.attempts < settings.DIGEST_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        release(
            delivery,
            token,
            was=was,
            status=Delivery.Status.PLANNED,
            error=reason,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            **unsent,
        )
        logger.info("delivery %s: transient error, retry in %.1fs: %s", delivery.pk, delay, reason)
        return SendResult(Outcome.RETRY, retry_in=delay, error=reason)
    if not is_transient(error) and not isinstance(error, AnymailError | smtplib.SMTPException):
        logger.exception("delivery %s failed", delivery.pk, exc_info=error)
    release(delivery, token, was=was, status=Delivery.Status.FAILED, error=reason, **unsent)
    if refuses_recipient(error):
        # As a hard bounce reported by webhook would: no more mail to a dead address.
        consent.suppress(
            delivery.subscriber,
            kind=SuppressionEvent.Kind.HARD_BOUNCE,
            source=SuppressionEvent.Source.SENDING,
            detail=reason,
        )
    return SendResult(Outcome.FAILED, error=reason)
