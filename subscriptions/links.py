"""Signed links in emails: nothing stored, nothing to enumerate (like Django's password reset).

A token names the subscriber and a purpose, and carries a fragment of an HMAC of the address
keyed by SECRET_KEY, so a token for a deleted subscriber never opens another one who happens to
get the same id, and a token read by someone else says nothing about whose address it is (a plain
hash could be matched against a list of addresses). A confirm token also fingerprints when the
subscriber last confirmed, so it dies once used, and may name the SignUpRequest whose
preferences confirming applies.

Tokens made before the HMAC carry a plain sha256 fragment (12 hex digits, 8 for the state);
they are still honoured, as links in emails already sent, until they expire.
"""

import hashlib
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from subscriptions.models import SignUpRequest, Subscriber

SALT = "paperboy.subscriptions.links"
# How long a link of each purpose stays valid; None: as long as the subscriber exists.
LIFETIMES: dict[str, timedelta | None] = {
    "confirm": timedelta(days=7),
    "preferences": None,
    "unsubscribe": None,
}


class InvalidLink(Exception):
    """A link that cannot be honoured; `reason` is one of: tampered, expired, gone, used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


FINGERPRINT_SALT = "paperboy.subscriptions.links.fingerprint"
FINGERPRINT_CHARS = 16
LEGACY_ADDRESS_CHARS = 12
LEGACY_STATE_CHARS = 8


def _keyed_fingerprint(kind: str, value: str, secret: str | None = None) -> str:
    data = value.encode("utf-8", "surrogatepass")
    mac = salted_hmac(f"{FINGERPRINT_SALT}.{kind}", data, secret=secret, algorithm="sha256")
    return mac.hexdigest()[:FINGERPRINT_CHARS]


def _secrets() -> Iterator[str]:
    # The signature of a token made before a key rotation still verifies through the fallbacks;
    # so must its fingerprint.
    yield settings.SECRET_KEY
    yield from getattr(settings, "SECRET_KEY_FALLBACKS", [])


def _fingerprint_matches(kind: str, value: str, fingerprint: object, legacy_chars: int) -> bool:
    if not isinstance(fingerprint, str) or not fingerprint.isascii():
        return False
    if len(fingerprint) == legacy_chars:  # made before the HMAC: a plain sha256 fragment
        legacy = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return constant_time_compare(legacy[:legacy_chars], fingerprint)
    return any(
        constant_time_compare(_keyed_fingerprint(kind, value, secret), fingerprint)
        for secret in _secrets()
    )


def address_fingerprint(email: str) -> str:
    """Ties a signed link to the address it was made for: a changed address voids the link."""
    return _keyed_fingerprint("address", email.lower())


def address_matches(email: str, fingerprint: object) -> bool:
    """Whether a token's address fingerprint (this format or the earlier one) is `email`'s."""
    return _fingerprint_matches("address", email.lower(), fingerprint, LEGACY_ADDRESS_CHARS)


def _confirmed_at(subscriber: Subscriber) -> str:
    return subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else ""


def _state_fingerprint(subscriber: Subscriber, purpose: str) -> str:
    if purpose != "confirm":
        return ""
    return _keyed_fingerprint("state", _confirmed_at(subscriber))


def _state_matches(subscriber: Subscriber, purpose: str, fingerprint: object) -> bool:
    if purpose != "confirm":
        return fingerprint == ""
    return _fingerprint_matches("state", _confirmed_at(subscriber), fingerprint, LEGACY_STATE_CHARS)


def make_token(
    subscriber: Subscriber, purpose: str, *, sign_up_request_id: int | None = None
) -> str:
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    payload = [
        subscriber.pk,
        purpose,
        address_fingerprint(subscriber.email),
        _state_fingerprint(subscriber, purpose),
    ]
    if sign_up_request_id is not None:
        payload.append(sign_up_request_id)
    return signing.TimestampSigner(salt=SALT).sign_object(payload, compress=True)


def sign_up_request_id(token: str) -> int | None:
    """The SignUpRequest a confirm link was sent for (read_token has checked the token)."""
    payload = signing.TimestampSigner(salt=SALT).unsign_object(token)
    return payload[4] if len(payload) > 4 else None


def read_token(token: str, purpose: str) -> Subscriber:
    lifetime = LIFETIMES[purpose]
    signer = signing.TimestampSigner(salt=SALT)
    try:
        subscriber_id, signed_purpose, fingerprint, state, *_request = signer.unsign_object(
            token, max_age=lifetime
        )
    except signing.SignatureExpired as error:
        raise InvalidLink("expired") from error
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise InvalidLink("tampered") from error
    if signed_purpose != purpose:
        raise InvalidLink("tampered")
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or not address_matches(subscriber.email, fingerprint):
        raise InvalidLink("gone")
    if not _state_matches(subscriber, purpose, state):
        raise InvalidLink("used")
    return subscriber


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def confirm_url(subscriber: Subscriber, *, sign_up_request: SignUpRequest | None = None) -> str:
    token = make_token(
        subscriber, "confirm", sign_up_request_id=sign_up_request.pk if sign_up_request else None
    )
    return absolute_url(reverse("subscriptions:confirm", kwargs={"token": token}))


def preferences_url(subscriber: Subscriber) -> str:
    token = make_token(subscriber, "preferences")
    return absolute_url(reverse("subscriptions:preferences", kwargs={"token": token}))


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The page with a confirm button, for people."""
    token = make_token(subscriber, "unsubscribe")
    return absolute_url(reverse("subscriptions:unsubscribe", kwargs={"token": token}))


def one_click_unsubscribe_url(subscriber: Subscriber) -> str:
    """The RFC 8058 endpoint that List-Unsubscribe points at, for mailbox providers."""
    token = make_token(subscriber, "unsubscribe")
    return absolute_url(reverse("subscriptions:one_click_unsubscribe", kwargs={"token": token}))
