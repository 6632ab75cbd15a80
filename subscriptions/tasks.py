from celery import shared_task

from subscriptions import consent


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=6)
def send_consent_email(subscriber_id: int, template: str) -> None:
    """Send a confirmation (or "you already subscribe") email off the request path, so a sign-up
    never waits on the ESP; an ESP error retries with backoff."""
    consent.deliver_consent_email(subscriber_id, template)
