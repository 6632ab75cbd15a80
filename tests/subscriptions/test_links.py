"""Signed links (subscriptions/links.py): a token carries an HMAC of the address keyed by
SECRET_KEY, not a hash anyone can recompute from a list of addresses; links sent before keep
working until they expire."""

import hashlib
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions import links
from subscriptions.models import Subscriber
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db


def payload_of(token: str) -> list:
    return signing.TimestampSigner(salt=links.SALT).unsign_object(token)


def legacy_token(subscriber: Subscriber, purpose: str) -> str:
    """A token in the format of the links sent before the HMAC (plain sha256 fragments)."""
    confirmed = subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else ""
    payload = [
        subscriber.pk,
        purpose,
        hashlib.sha256(subscriber.email.lower().encode()).hexdigest()[:12],
        hashlib.sha256(confirmed.encode()).hexdigest()[:8] if purpose == "confirm" else "",
    ]
    return signing.TimestampSigner(salt=links.SALT).sign_object(payload, compress=True)


def sha256_fragments(text: str) -> set[str]:
    """Every 8-character window of the sha256 of `text`, in hex."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {digest[start : start + 8] for start in range(len(digest) - 7)}


@pytest.mark.parametrize("purpose", ["confirm", "preferences", "unsubscribe"])
def test_a_new_token_holds_no_sha256_of_the_address(make_subscriber, purpose):
    subscriber = make_subscriber("Grace.Hopper@example.org")
    token = links.make_token(subscriber, purpose)

    text = repr(payload_of(token)) + token
    for spelling in (subscriber.email, subscriber.email.lower()):
        assert not any(fragment in text for fragment in sha256_fragments(spelling))
    assert links.read_token(token, purpose) == subscriber


def test_the_fingerprint_depends_on_the_secret_key(settings):
    first = links.address_fingerprint("grace@example.org")
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"

    assert links.address_fingerprint("grace@example.org") != first


def test_a_token_made_before_a_key_rotation_opens_through_the_fallbacks(make_subscriber, settings):
    subscriber = make_subscriber()
    token = links.make_token(subscriber, "preferences")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the-new-secret-key-for-this-test-only-0123456789"
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert links.read_token(token, "preferences") == subscriber


@pytest.mark.parametrize(
    ("route", "purpose", "status"),
    [
        ("subscriptions:preferences", "preferences", 200),
        ("subscriptions:unsubscribe", "unsubscribe", 200),
    ],
)
def test_an_old_format_link_still_opens_its_page(client, make_subscriber, route, purpose, status):
    subscriber = make_subscriber()

    response = client.get(reverse(route, kwargs={"token": legacy_token(subscriber, purpose)}))

    assert response.status_code == status
    assert subscriber.email in response.content.decode()


def test_an_old_format_one_click_unsubscribe_still_unsubscribes(client, make_subscriber):
    subscriber = make_subscriber()
    token = legacy_token(subscriber, "unsubscribe")

    response = client.post(
        reverse("subscriptions:one_click_unsubscribe", kwargs={"token": token}),
        {"List-Unsubscribe": "One-Click"},
    )

    assert response.status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED


def test_an_old_format_confirm_link_works_until_it_expires(make_subscriber):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)
    token = legacy_token(subscriber, "confirm")
    eight_days_later = timezone.now() + timedelta(days=8)

    assert links.read_token(token, "confirm") == subscriber
    later = mock.patch("django.core.signing.time.time", return_value=eight_days_later.timestamp())
    with later, pytest.raises(links.InvalidLink, match="expired"):
        links.read_token(token, "confirm")


def test_an_old_format_link_for_another_address_is_refused(make_subscriber):
    subscriber = make_subscriber()
    token = legacy_token(subscriber, "preferences")
    Subscriber.objects.filter(pk=subscriber.pk).update(email="someone.else@example.org")

    with pytest.raises(links.InvalidLink, match="gone"):
        links.read_token(token, "preferences")


def test_a_used_confirm_link_dies_in_either_format(make_subscriber):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)
    tokens = [links.make_token(subscriber, "confirm"), legacy_token(subscriber, "confirm")]
    subscriber.confirmed_at = timezone.now()
    subscriber.save()

    for token in tokens:
        with pytest.raises(links.InvalidLink, match="used"):
            links.read_token(token, "confirm")


@settings(max_examples=200, deadline=None)
@given(token=any_text, purpose=st.sampled_from(sorted(links.LIFETIMES)))
def test_any_text_as_a_token_opens_nothing(token, purpose):
    with pytest.raises(links.InvalidLink):
        links.read_token(token, purpose)


@settings(max_examples=200, deadline=None)
@given(email=any_text, fingerprint=st.one_of(any_text, st.integers(), st.none()))
def test_a_fingerprint_matches_only_its_own_address(email, fingerprint):
    assert links.address_matches(email, links.address_fingerprint(email))
    assert re.fullmatch(r"[0-9a-f]{16}", links.address_fingerprint(email))
    if fingerprint != links.address_fingerprint(email):
        legacy = hashlib.sha256(email.lower().encode("utf-8", "surrogatepass")).hexdigest()[:12]
        assert links.address_matches(email, fingerprint) == (fingerprint == legacy)


# Links are signed uncompressed now; before, zlib was tried on every token and kept when it made
# the token shorter, which a large subscriber id does.
LARGE_ID = 111_111_111_111


def compressed_token(subscriber: Subscriber, purpose: str) -> str:
    """A token of the current payload, compressed as links made before could be."""
    payload = [subscriber.pk, purpose, links.address_fingerprint(subscriber.email), ""]
    token = signing.TimestampSigner(salt=links.SALT).sign_object(payload, compress=True)
    assert token.startswith(".")  # zlib's mark
    return token


@pytest.mark.parametrize("purpose", ["preferences", "unsubscribe"])
def test_a_compressed_link_made_before_still_opens(client, make_subscriber, purpose):
    subscriber = make_subscriber(pk=LARGE_ID)
    token = compressed_token(subscriber, purpose)

    assert links.read_token(token, purpose) == subscriber
    response = client.get(reverse(f"subscriptions:{purpose}", kwargs={"token": token}))
    assert response.status_code == 200 and subscriber.email in response.content.decode()


def test_a_new_link_is_not_compressed_and_opens(make_subscriber):
    subscriber = make_subscriber(pk=LARGE_ID)
    token = links.make_token(subscriber, "preferences")

    assert not token.startswith(".")
    assert links.read_token(token, "preferences") == subscriber


@settings(max_examples=200, deadline=None)
@given(value=any_text, salt=st.sampled_from([links.SALT, "paperboy.other"]))
def test_our_signer_signs_any_text_as_djangos_does(value, salt):
    for ours, djangos in (
        (links.Signer, signing.Signer),
        (links.TimestampSigner, signing.TimestampSigner),
    ):
        with mock.patch("django.core.signing.time.time", return_value=1_772_000_000):
            assert ours(salt=salt).sign_object([value, 7]) == djangos(salt=salt).sign_object(
                [value, 7]
            )
            assert djangos(salt=salt).unsign_object(ours(salt=salt).sign_object(value)) == value


def test_our_signer_reads_a_token_signed_before_a_key_rotation(settings):
    token = links.Signer(salt=links.SALT).sign_object(["x"])
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the-new-secret-key-for-this-test-only-0123456789"
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert links.Signer(salt=links.SALT).unsign_object(token) == ["x"]
    assert links.Signer(salt=links.SALT).sign_object(["x"]) != token


def test_links_are_what_reverse_writes_for_the_site_of_the_moment(make_subscriber, settings):
    subscriber = make_subscriber()
    for site in ("http://localhost:8000", "https://paperboy.example"):
        settings.SITE_URL = site
        url = links.preferences_url(subscriber)
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert url == site + reverse("subscriptions:preferences", kwargs={"token": token})
        assert links.read_token(token, "preferences") == subscriber
