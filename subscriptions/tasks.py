"""Celery tasks for consent emails: the edge that schedules subscriptions' plain functions.
No feature module imports this; views and the admin call queue_consent_emails after a change."""

from celery import shared_task
from django.utils import timezone

from subscriptions import consent, pauses, throttling


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=6)
def send_consent_email(
    subscriber_id: int, template: str, sign_up_request_id: int | None = None
) -> None:
    """Send a confirmation (or "you already subscribe") email off the request path, so a sign-up
    never waits on the ESP; an ESP error retries with backoff."""
    consent.deliver_consent_email(subscriber_id, template, sign_up_request_id)


@shared_task
def send_owed_emails() -> int:
    """Queue the consent emails owed while the broker was down; drop expired rate-limit rows;
    mark active again the readers whose pause for a month ended."""
    throttling.forget_expired_windows()
    pauses.end_pauses(timezone.now())
    return queue_consent_emails()


def queue_consent_emails() -> int:
    """Queue the consent emails owed so far (a sign-up's confirmation, a reminder); with the
    broker down they stay owed and beat's send_owed_emails queues them once it is back."""
    return consent.send_owed_emails(send_consent_email.delay)
