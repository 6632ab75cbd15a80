"""ESP tracking webhooks (through django-anymail, so any ESP it supports): bounces and complaints
suppress the address; a delivery ends a run of soft bounces."""

import logging

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason

from subscriptions import consent
from subscriptions.models import Subscriber, SuppressionEvent

logger = logging.getLogger(__name__)
Kind = SuppressionEvent.Kind
# Postmark files a soft bounce under its Bounce record type, which anymail reports as "bounced".
SOFT_BOUNCE_TYPES = {"SoftBounce"}
REJECTIONS = {
    RejectReason.BOUNCED: Kind.HARD_BOUNCE,
    RejectReason.INVALID: Kind.HARD_BOUNCE,
    RejectReason.SPAM: Kind.COMPLAINT,
}


def classify(event: AnymailTrackingEvent) -> str | None:
    """The suppression an event calls for, or None (opens, clicks, deliveries, ...)."""
    if event.event_type == EventType.COMPLAINED:
        return Kind.COMPLAINT
    if event.event_type == EventType.BOUNCED:
        esp_type = event.esp_event.get("Type") if isinstance(event.esp_event, dict) else None
        return Kind.SOFT_BOUNCE if esp_type in SOFT_BOUNCE_TYPES else Kind.HARD_BOUNCE
    if event.event_type == EventType.DEFERRED:
        return Kind.SOFT_BOUNCE
    if event.event_type == EventType.REJECTED:
        return REJECTIONS.get(event.reject_reason)
    if event.event_type == EventType.UNSUBSCRIBED:
        return Kind.UNSUBSCRIBE
    return None


def handle_tracking(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    """anymail's `tracking` signal receiver."""
    if not event.recipient:
        return
    if event.event_type == EventType.DELIVERED:
        consent.clear_soft_bounces(event.recipient)
        return
    kind = classify(event)
    if kind is None:
        return
    subscriber = Subscriber.objects.with_email(event.recipient).first()
    if subscriber is None:
        logger.info("%s %s event for an address we do not know", esp_name, event.event_type)
        return
    detail = event.description or event.mta_response or event.event_type
    if kind == Kind.UNSUBSCRIBE:
        consent.unsubscribe(subscriber, source=SuppressionEvent.Source.WEBHOOK, reason=detail)
        return
    consent.suppress(
        subscriber,
        kind=kind,
        source=SuppressionEvent.Source.WEBHOOK,
        detail=detail,
        esp=esp_name,
        message_id=event.message_id or "",
    )
