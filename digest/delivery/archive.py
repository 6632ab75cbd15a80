"""The web archive: a signed link to one subscriber's digest for one period ("view in browser").

The token names the subscriber, the period and a fragment of a hash of the address, like
subscriptions.links: nothing is stored and the URLs cannot be enumerated. Tokens are signed
uncompressed; the zlib-compressed ones signed before still read.
"""

import hashlib
from datetime import date

from django.core import signing

from digest.models import Delivery
from subscriptions.links import Signer, token_url
from subscriptions.models import Subscriber

SALT = "paperboy.digest.delivery.archive"


class ArchiveNotFound(Exception):
    pass


def _fingerprint(email: str) -> str:
    return hashlib.sha256(email.lower().encode()).hexdigest()[:12]


def archive_token(subscriber: Subscriber, period: date) -> str:
    payload = [subscriber.pk, period.isoformat(), _fingerprint(subscriber.email)]
    return Signer(salt=SALT).sign_object(payload)


def archive_url(subscriber: Subscriber, period: date) -> str:
    return token_url("digest:archive", archive_token(subscriber, period))


def read_archive_token(token: str) -> Delivery:
    """The sent (or being sent) delivery the token names; ArchiveNotFound otherwise."""
    try:
        subscriber_id, period, fingerprint = Signer(salt=SALT).unsign_object(token)
        period = date.fromisoformat(period)
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise ArchiveNotFound("tampered") from error
    delivery = (
        Delivery.objects.select_related("subscriber")
        .filter(
            subscriber_id=subscriber_id,
            period=period,
            status__in=[Delivery.Status.SENDING, Delivery.Status.SENT],
        )
        .first()
    )
    if delivery is None or _fingerprint(delivery.subscriber.email) != fingerprint:
        raise ArchiveNotFound("gone")
    return delivery
