"""Signed links in emails: nothing stored, nothing to enumerate (like Django's password reset).

A token names the subscriber and a purpose, and carries a fragment of an HMAC of the address
keyed by SECRET_KEY, so a token for a deleted subscriber never opens another one who happens to
get the same id, and a token read by someone else says nothing about whose address it is (a plain
hash could be matched against a list of addresses). A confirm token also fingerprints when the
subscriber last confirmed, so it dies once used, and may name the SignUpRequest whose
preferences confirming applies.

Tokens made before the HMAC carry a plain sha256 fragment (12 hex digits, 8 for the state);
they are still honoured, as links in emails already sent, until they expire. Tokens are signed
uncompressed (zlib never shortens a payload this short, and costs more than the rest of the
signing); zlib-compressed ones, as links made before were when it happened to help, still read.
"""

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes

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
    return _fingerprint_with(kind, value, settings.SECRET_KEY if secret is None else secret)


@lru_cache(maxsize=4096)
def _fingerprint_with(kind: str, value: str, secret: str) -> str:
    # Cached: a digest signs a dozen links for one address.
    data = value.encode("utf-8", "surrogatepass")
    mac = salted_hmac(f"{FINGERPRINT_SALT}.{kind}", data, secret=secret, algorithm="sha256")
    return mac.hexdigest()[:FINGERPRINT_CHARS]


@lru_cache(maxsize=64)
def _signing_mac(key_salt: str, key: str | bytes) -> hmac.HMAC:
    # What salted_hmac derives from the salt and the key, once: the HMAC keyed by it, copied
    # for each value.
    derived = hashlib.sha256(force_bytes(key_salt) + force_bytes(key)).digest()
    return hmac.new(derived, digestmod=hashlib.sha256)


class _CachedKeySignature:
    """Django's signature (base64_hmac over salted_hmac), byte for byte, without deriving the
    key again for every value signed."""

    def signature(self, value: str, key: str | bytes | None = None) -> str:
        mac = _signing_mac(f"{self.salt}signer", key or self.key).copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


class Signer(_CachedKeySignature, signing.Signer):
    pass


class TimestampSigner(_CachedKeySignature, signing.TimestampSigner):
    pass


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
    return TimestampSigner(salt=SALT).sign_object(payload)


def sign_up_request_id(token: str) -> int | None:
    """The SignUpRequest a confirm link was sent for (read_token has checked the token)."""
    payload = TimestampSigner(salt=SALT).unsign_object(token)
    return payload[4] if len(payload) > 4 else None


def read_token(token: str, purpose: str) -> Subscriber:
    lifetime = LIFETIMES[purpose]
    signer = TimestampSigner(salt=SALT)
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


# Reversed in a token's place to cut a link around it; never part of a token (it holds no ":").
_TOKEN_STAND_IN = "0token0stand0in0"


@lru_cache(maxsize=256)
def _url_around_token(view: str, site_url: str, prefix: str, urlconf) -> tuple[str, str]:
    before, after = absolute_url(reverse(view, kwargs={"token": _TOKEN_STAND_IN})).split(
        _TOKEN_STAND_IN
    )
    return before, after


def token_url(view: str, token: str) -> str:
    """The absolute URL of `view` for `token`, as reverse() writes it (a token's characters are
    never quoted), with the view reversed once per process: a digest holds a dozen such links."""
    before, after = _url_around_token(view, settings.SITE_URL, get_script_prefix(), get_urlconf())
    return f"{before}{token}{after}"


def confirm_url(subscriber: Subscriber, *, sign_up_request: SignUpRequest | None = None) -> str:
    token = make_token(
        subscriber, "confirm", sign_up_request_id=sign_up_request.pk if sign_up_request else None
    )
    return token_url("subscriptions:confirm", token)


def preferences_url(subscriber: Subscriber) -> str:
    return token_url("subscriptions:preferences", make_token(subscriber, "preferences"))


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The page with a confirm button, for people."""
    return token_url("subscriptions:unsubscribe", make_token(subscriber, "unsubscribe"))


def one_click_unsubscribe_url(subscriber: Subscriber) -> str:
    """The RFC 8058 endpoint that List-Unsubscribe points at, for mailbox providers."""
    return token_url("subscriptions:one_click_unsubscribe", make_token(subscriber, "unsubscribe"))
