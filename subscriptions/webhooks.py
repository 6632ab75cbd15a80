"""ESP tracking webhooks (through django-anymail, so any ESP it supports): bounces and complaints
suppress the address; a delivery ends a run of soft bounces.

Every anymail URL is served through `guard`: anymail alone accepts any POST when no
WEBHOOK_SECRET is set (it only warns), which would let anyone suppress any reader, and answers
500 to a payload it cannot parse (which ESPs retry for days).
"""

import contextvars
import functools
import logging
import re
from collections.abc import Callable

from anymail.exceptions import AnymailError
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from anymail.utils import get_anymail_setting, get_request_basic_auth
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

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
# What no text column can keep: PostgreSQL refuses NUL, and UTF-8 cannot carry a lone surrogate.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: object) -> str:
    """ESP-sent text as the database can keep it, each unstorable character replaced."""
    return UNSTORABLE.sub("\ufffd", str(text or ""))


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


class TrackingFailed(Exception):
    """Recording a well-formed event failed (the database is down, say): answer 500, so the
    ESP sends the event again later."""


# What an ESP's payload parser raises on a body it cannot read: JSON errors and bad UTF-8 are
# ValueErrors, missing fields KeyErrors or IndexErrors, wrongly shaped ones TypeErrors or
# AttributeErrors; anymail raises ImproperlyConfigured for a missing signing key or a payload
# sent to the wrong URL.
MALFORMED = (
    AnymailError,
    ImproperlyConfigured,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
)


def webhook_secrets() -> list[str]:
    """The `user:password` pairs an ESP may call with (anymail's WEBHOOK_SECRET: one or a list)."""
    secret = get_anymail_setting("webhook_secret", default=[])
    return [secret] if isinstance(secret, str) else [item for item in secret if item]


# Per request: how many events anymail parsed, and how many of those named no recipient.
_events_read: contextvars.ContextVar[list[int]] = contextvars.ContextVar("events_read")


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(f"{text}\n", status=status, content_type="text/plain")


def guard(view: Callable) -> Callable:
    """Wrap one anymail webhook view: 403 unless the configured basic-auth secret comes with the
    request (and always 403 when none is configured), 400 for a payload that cannot be read."""

    @csrf_exempt
    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        secrets = webhook_secrets()
        if not secrets:
            return _plain(403, "Webhooks are disabled: ANYMAIL_WEBHOOK_SECRET is not set.")
        offered = get_request_basic_auth(request) or ""
        if not any(constant_time_compare(offered, secret) for secret in secrets):
            return _plain(403, "Missing or wrong webhook credentials.")
        counts = [0, 0]
        reset = _events_read.set(counts)
        try:
            response = view(request, *args, **kwargs)
        except TrackingFailed:
            raise
        except MALFORMED as error:
            logger.warning("Refused a malformed webhook call to %s: %r", request.path, error)
            return _plain(400, f"Malformed webhook payload: {type(error).__name__}.")
        finally:
            _events_read.reset(reset)
        events, without_recipient = counts
        if events and events == without_recipient:
            # A batch with some good events keeps them (and answers 200); the bad are logged.
            return _plain(400, "Malformed webhook payload: no event names a recipient.")
        return response

    return guarded


def guarded_urlpatterns() -> list[URLPattern]:
    """anymail's URLs, each behind `guard`."""
    from anymail import urls

    return [
        URLPattern(pattern.pattern, guard(pattern.callback), pattern.default_args, pattern.name)
        for pattern in urls.urlpatterns
    ]


def handle_tracking(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    """anymail's `tracking` signal receiver."""
    try:
        record_tracking_event(event, esp_name)
    except Exception as error:
        raise TrackingFailed(f"{esp_name} {event.event_type} event: {error!r}") from error


def record_tracking_event(event: AnymailTrackingEvent, esp_name: str) -> None:
    counts = _events_read.get([0, 0])
    counts[0] += 1
    if not event.recipient or UNSTORABLE.search(event.recipient):
        counts[1] += 1  # no reader has an address with such characters
        logger.warning("%s %s event names no usable recipient: ignored", esp_name, event.event_type)
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
    detail = storable(event.description or event.mta_response or event.event_type)
    if kind == Kind.UNSUBSCRIBE:
        consent.unsubscribe(subscriber, source=SuppressionEvent.Source.WEBHOOK, reason=detail)
        return
    consent.suppress(
        subscriber,
        kind=kind,
        source=SuppressionEvent.Source.WEBHOOK,
        detail=detail,
        esp=esp_name,
        message_id=storable(event.message_id),
    )
