"""Which send errors are worth another attempt, and when.

Our own backoff rather than Celery's retry_backoff: a digest's attempts are counted on its row
(the claim increments them), so a redelivered task or a new worker resumes the same schedule."""

import random
import smtplib

import requests
from anymail.exceptions import AnymailError, AnymailRecipientsRefused, AnymailRequestsAPIError
from django.conf import settings


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
