"""Consent: sign-up with double opt-in, confirmation, preferences, unsubscribe, suppression and
erasure. Every change of who may be emailed goes through here."""

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.celery import BROKER_DOWN
from config.emails import send_email
from subscriptions import links
from subscriptions.models import OwedEmail, SignUpRequest, Subscriber, SuppressionEvent
from subscriptions.signals import reader_confirmed

logger = logging.getLogger(__name__)

CONFIRMATION_INTERVAL = timedelta(hours=1)
PREFERENCE_FIELDS = (
    "topics",
    "frequency",
    "weekday",
    "send_hour",
    "time_zone",
    "papers_per_digest",
)
SUPPRESSED_STATUS = {
    SuppressionEvent.Kind.HARD_BOUNCE: Subscriber.Status.BOUNCED,
    SuppressionEvent.Kind.COMPLAINT: Subscriber.Status.COMPLAINED,
    SuppressionEvent.Kind.UNSUBSCRIBE: Subscriber.Status.UNSUBSCRIBED,
    SuppressionEvent.Kind.EDITOR: Subscriber.Status.UNSUBSCRIBED,
}
UNSUBSCRIBE_RECEIPT = "unsubscribed"  # the email template saying an unsubscribe is done
# Statuses in which a subscriber may still be emailed (a confirmation, or digests).
RECEIVING = (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED)


@dataclass(frozen=True)
class SignUp:
    email: str
    preferences: dict
    ip: str | None
    consent_text: str  # what the form said the reader agreed to
    liked_paper_ids: tuple[int, ...] = ()  # ticked in the preview; confirm hands them on


def sign_up(request: SignUp) -> None:
    """Record a sign-up and email the address; what happens is never told back to the caller, so
    the response cannot reveal whether an address is subscribed.

    A sign-up for an address already here changes nothing on that reader: an active one is told
    they already subscribe; for a pending or unsubscribed one the request waits as a
    SignUpRequest, applied when its confirmation link is followed; a bounced or complained one
    is not emailed at all (only an editor lifts that)."""
    subscriber = _create_pending(request)  # most sign-ups are new addresses: insert first
    if subscriber is not None:
        _queue_email(subscriber, "confirm")
        return
    subscriber = Subscriber.objects.with_email(request.email).first()
    if subscriber is None:
        return  # erased since the insert failed: nothing to sign up again from here
    if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        _send_existing(subscriber)  # an email, not a change
        return
    if subscriber.status in (Subscriber.Status.PENDING, Subscriber.Status.UNSUBSCRIBED):
        if not _claim_email_slot(subscriber):
            return  # one confirmation an hour: this request would have no link to confirm it
        _prune_sign_up_requests()
        pending = SignUpRequest.objects.create(
            subscriber=subscriber,
            preferences=request.preferences,
            liked_at_sign_up=list(request.liked_paper_ids),
            consent_ip=request.ip or None,
            consent_text=request.consent_text,
        )
        _queue_email(subscriber, "confirm", sign_up_request=pending)


def _prune_sign_up_requests() -> None:
    """A request lives no longer than the link that can apply it."""
    SignUpRequest.objects.filter(
        requested_at__lt=timezone.now() - links.LIFETIMES["confirm"]
    ).delete()


def _create_pending(request: SignUp) -> Subscriber | None:
    """Insert a new subscriber, or None when the address is already known. The new row claims
    the first confirmation email's slot as it is inserted."""
    subscriber = Subscriber(
        email=request.email,
        confirmation_sent_at=timezone.now(),
        liked_at_sign_up=list(request.liked_paper_ids),
        **request.preferences,
    )
    _record_consent(subscriber, request)
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint keeps the outer transaction usable
                subscriber.save(force_insert=True)
        else:
            subscriber.save(force_insert=True)  # autocommit: a conflict leaves nothing behind
    except IntegrityError:
        return None
    return subscriber


def _record_consent(subscriber: Subscriber, request: SignUp) -> None:
    subscriber.consent_at = timezone.now()
    subscriber.consent_ip = request.ip or None
    subscriber.consent_text = request.consent_text


def _claim_email_slot(subscriber: Subscriber, *, sent_before: datetime | None = None) -> bool:
    """At most one confirmation email per address per hour (an email sent before `sent_before`
    does not count); the conditional UPDATE is the lock."""
    now = timezone.now()
    free = Q(confirmation_sent_at__isnull=True) | Q(
        confirmation_sent_at__lte=now - CONFIRMATION_INTERVAL
    )
    if sent_before is not None:
        free |= Q(confirmation_sent_at__lt=sent_before)
    claimed = (
        Subscriber.objects.filter(pk=subscriber.pk).filter(free).update(confirmation_sent_at=now)
    )
    if claimed:
        subscriber.confirmation_sent_at = now
    return bool(claimed)


def send_confirmation(subscriber: Subscriber) -> bool:
    """Queue the signed confirmation link; False when one went to this address within the hour."""
    if not _claim_email_slot(subscriber):
        return False
    _email_confirmation(subscriber)
    return True


def _email_confirmation(subscriber: Subscriber) -> None:
    _queue_email(subscriber, "confirm")


def _send_existing(subscriber: Subscriber) -> bool:
    if not _claim_email_slot(subscriber):
        return False
    _queue_email(subscriber, "confirm-existing")
    return True


def _queue_email(
    subscriber: Subscriber, template: str, *, sign_up_request: SignUpRequest | None = None
) -> None:
    """Owe the email: a row written with the change that calls for it, so nothing is lost if the
    broker is down. The caller queues the owed emails after commit (subscriptions.tasks)."""
    OwedEmail.objects.create(
        subscriber=subscriber, template=template, sign_up_request=sign_up_request
    )


def send_owed_emails(queue: Callable[[int, str, int | None], object], limit: int = 500) -> int:
    """Hand the owed consent emails to `queue` (the sending task's delay), oldest first; how many
    were queued. Each row is taken by deleting it, so two callers never queue the same email; a
    broker that is down puts the row back and stops: the rest stay owed for the next call."""
    queued = 0
    for owed in OwedEmail.objects.order_by("pk")[:limit]:
        taken, _ = OwedEmail.objects.filter(pk=owed.pk).delete()
        if not taken:
            continue  # another caller queued it
        try:
            queue(owed.subscriber_id, owed.template, owed.sign_up_request_id)
        except BROKER_DOWN as error:
            logger.warning("Broker down, owed consent emails wait: %r", error)
            owed.save(force_insert=True)
            break
        queued += 1
    return queued


class SubscriberNotCommitted(Exception):
    """The task ran before the row it was queued for became visible: retry."""


def deliver_consent_email(
    subscriber_id: int, template: str, sign_up_request_id: int | None = None
) -> None:
    """Render and send a confirmation ("confirm"), an "already subscribed" reminder
    ("confirm-existing") or an unsubscribe receipt ("unsubscribed"). A confirmation for a
    SignUpRequest shows what that request asked for, and its link applies it."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        # Not committed yet (the task retries a few times), or erased meanwhile (it gives up).
        raise SubscriberNotCommitted(subscriber_id)
    context = {"subscriber": subscriber, "preferences_url": links.preferences_url(subscriber)}
    headers = None
    if template == "confirm":
        pending = subscriber.sign_up_requests.filter(pk=sign_up_request_id).first()
        if pending is not None:
            context["subscriber"] = as_requested(subscriber, pending)
        context["confirm_url"] = links.confirm_url(subscriber, sign_up_request=pending)
        context["lifetime_days"] = links.LIFETIMES["confirm"].days
    elif template != UNSUBSCRIBE_RECEIPT:  # the receipt goes to a reader already off the list
        headers = _list_unsubscribe_headers(subscriber)
    send_email(template, subscriber.email, context, headers=headers)


def as_requested(subscriber: Subscriber, pending: SignUpRequest) -> Subscriber:
    """An unsaved copy of the subscriber with a request's preferences, to show what it asks."""
    shown = copy.copy(subscriber)
    set_preferences(shown, pending.preferences)
    return shown


def set_preferences(subscriber: Subscriber, preferences: dict) -> None:
    """The preference fields `preferences` names, set on the (unsaved) subscriber."""
    for name in PREFERENCE_FIELDS:
        if name in preferences:
            setattr(subscriber, name, preferences[name])


def _list_unsubscribe_headers(subscriber: Subscriber) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{links.one_click_unsubscribe_url(subscriber)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def resubscribe(subscriber: Subscriber) -> bool:
    """An unsubscribed reader asks again from their preference link: as after a sign-up, nothing
    is sent but a new confirmation, and their consent is recorded again when they confirm. False
    when no email went out (not unsubscribed, or one went to the address within the hour)."""
    if subscriber.status not in (Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.PENDING):
        return False
    if subscriber.status == Subscriber.Status.UNSUBSCRIBED:
        subscriber.status = Subscriber.Status.PENDING
        subscriber.save(update_fields=["status", "updated_at"])
    # The first request since unsubscribing gets its email even if the sign-up's went out
    # within the hour; repeated presses wait for the hour like sign-ups do.
    if not _claim_email_slot(subscriber, sent_before=subscriber.unsubscribed_at):
        return False
    _email_confirmation(subscriber)
    return True


def consent_withdrawn(subscriber: Subscriber) -> bool:
    """The reader unsubscribed after they last gave consent (and has not given it again)."""
    if subscriber.unsubscribed_at is None:
        return False
    return subscriber.consent_at is None or subscriber.consent_at < subscriber.unsubscribed_at


def confirm(
    subscriber: Subscriber,
    *,
    sign_up_request_id: int | None = None,
    ip: str | None = None,
    consent_text: str = "",
) -> bool:
    """Start sending to a subscriber who followed their confirmation link; False if already on.
    A link sent for a SignUpRequest applies what it asked for, and records that consent. A reader
    coming back after unsubscribing gives consent again here (`consent_text`, what the
    confirmation page said), and it is recorded."""
    if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        return False
    with transaction.atomic():
        pending = subscriber.sign_up_requests.filter(pk=sign_up_request_id).first()
        if pending is not None:
            set_preferences(subscriber, pending.preferences)
            subscriber.liked_at_sign_up = pending.liked_at_sign_up
            subscriber.consent_at = pending.requested_at
            subscriber.consent_ip = pending.consent_ip
            subscriber.consent_text = pending.consent_text
        elif consent_text and consent_withdrawn(subscriber):
            _record_consent(subscriber, SignUp(subscriber.email, {}, ip, consent_text))
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = subscriber.digests_from = timezone.now()
        subscriber.unsubscribed_at = None
        subscriber.unsubscribe_reason = ""
        subscriber.soft_bounces = 0
        subscriber.save()
        subscriber.sign_up_requests.all().delete()  # their links died with this confirmation
        liked = list(subscriber.liked_at_sign_up or [])
        reader_confirmed.send(sender=Subscriber, subscriber=subscriber, liked_paper_ids=liked)
    return True


def update_preferences(subscriber: Subscriber, preferences: dict) -> None:
    set_preferences(subscriber, preferences)
    subscriber.save(update_fields=[*PREFERENCE_FIELDS, "updated_at"])


def unsubscribe(
    subscriber: Subscriber, *, source: str, reason: str = "", receipt: bool = False
) -> bool:
    """Stop all mail at once; False (and no new record) when the subscriber was already off.
    With `receipt`, one last email says it is done and how to come back (owed, like the
    confirmation: the view queues it after commit)."""
    if subscriber.status not in RECEIVING:
        return False
    with transaction.atomic():
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.unsubscribed_at = timezone.now()
        subscriber.unsubscribe_reason = reason[:200]
        subscriber.paused_until = None
        subscriber.save()
        if receipt:
            _queue_email(subscriber, UNSUBSCRIBE_RECEIPT)
        SuppressionEvent.objects.create(
            subscriber=subscriber,
            kind=SuppressionEvent.Kind.UNSUBSCRIBE,
            source=source,
            detail=reason[:500],
        )
    return True


def suppress(
    subscriber: Subscriber,
    *,
    kind: str,
    source: str,
    detail: str = "",
    esp: str = "",
    message_id: str = "",
) -> bool:
    """Record a bounce, complaint or editor's suppression; True when the subscriber stops
    receiving mail because of it. Soft bounces count once per message and suppress at
    SOFT_BOUNCE_LIMIT."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if kind == SuppressionEvent.Kind.SOFT_BOUNCE:
            if (
                message_id
                and subscriber.suppressions.filter(
                    kind=kind, esp=esp, message_id=message_id
                ).exists()
            ):
                return False  # the ESP retried the webhook, or the message bounced twice
            subscriber.soft_bounces += 1
            if subscriber.soft_bounces >= settings.SOFT_BOUNCE_LIMIT:
                new_status = Subscriber.Status.BOUNCED
            else:
                new_status = subscriber.status
        else:
            new_status = SUPPRESSED_STATUS[kind]
        SuppressionEvent.objects.create(
            subscriber=subscriber,
            kind=kind,
            source=source,
            esp=esp[:32],
            message_id=message_id[:255],
            detail=detail[:500],
        )
        was_receiving = subscriber.status in RECEIVING
        if new_status in (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED):
            subscriber.status = new_status  # more telling than any earlier state
        elif new_status == Subscriber.Status.UNSUBSCRIBED and was_receiving:
            subscriber.status = new_status
            subscriber.unsubscribed_at = timezone.now()
            subscriber.unsubscribe_reason = (detail or "Suppressed by an editor")[:200]
        subscriber.save()
    return was_receiving and subscriber.status not in RECEIVING


def clear_soft_bounces(email: str) -> None:
    """A delivered message ends a run of soft bounces."""
    Subscriber.objects.with_email(email).filter(soft_bounces__gt=0).update(
        soft_bounces=0, updated_at=timezone.now()
    )


def reactivate(subscriber: Subscriber) -> None:
    """An editor lifts a suppression: back to active if the address was ever confirmed, else to
    pending (nothing is sent until the owner confirms)."""
    subscriber.status = (
        Subscriber.Status.ACTIVE if subscriber.confirmed_at else Subscriber.Status.PENDING
    )
    subscriber.soft_bounces = 0
    subscriber.unsubscribed_at = None
    subscriber.unsubscribe_reason = ""
    subscriber.save()


def erase(subscriber: Subscriber, *, source: str = SuppressionEvent.Source.LINK) -> None:
    """Forget the subscriber. Their suppression history stays, stripped of anything personal."""
    with transaction.atomic():
        SuppressionEvent.objects.filter(subscriber=subscriber).update(
            subscriber=None, detail="", message_id=""
        )
        SuppressionEvent.objects.create(kind=SuppressionEvent.Kind.ERASURE, source=source)
        subscriber.delete()
