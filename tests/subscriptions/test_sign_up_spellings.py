"""One canonical address per mailbox: every spelling of an address is one reader."""

import pytest
from django.urls import reverse

from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db

SIGN_UP = "/subscribe/"


# One canonical address per mailbox (issue 11)

VARIANTS = [
    "victim@example.com",
    "victim@ｅxample.com",  # fullwidth e
    "victim@e\u00adxample.com",  # soft hyphen
    "victim@EXAMPLE.COM",
    "victim@exam\u200dple.com",  # zero-width joiner
    "victim＠example.com",  # fullwidth at sign
    "victim@example.com\u200b",  # zero-width space
]


def test_variant_spellings_of_one_address_are_one_reader_and_one_email(client, outbox):
    responses = [client.post(SIGN_UP, sign_up_data(email=email)) for email in VARIANTS]

    assert Subscriber.objects.count() == 1
    assert Subscriber.objects.get().email == "victim@example.com"
    [email] = read_outbox(outbox)
    assert email["To"] == "victim@example.com"
    refused = [
        variant
        for variant, response in zip(VARIANTS, responses, strict=True)
        if response.status_code == 400
    ]
    assert refused == [VARIANTS[2], VARIANTS[4], VARIANTS[6]]


def test_an_invisible_character_is_a_clear_form_error(client, outbox):
    response = client.post(SIGN_UP, sign_up_data(email="victim@e\u00adxample.com"))

    assert response.status_code == 400
    page = response.content.decode()
    assert "invisible or control character (soft hyphen, U+00AD, at position 9)" in page
    assert not Subscriber.objects.exists()
    assert read_outbox(outbox) == []


def test_a_control_character_in_a_quoted_local_part_is_refused(client, outbox):
    response = client.post(SIGN_UP, sign_up_data(email='"a\x0bb"@example.com'))

    assert response.status_code == 400
    assert "control character" in response.content.decode()
    assert not Subscriber.objects.exists()
    assert read_outbox(outbox) == []


def test_the_per_address_limit_counts_every_spelling_of_it(client, settings, outbox):
    settings.SIGNUP_LIMIT_PER_ADDRESS = 2
    spellings = ["victim@example.com", "victim@ｅxample.com", "victim@EXAMPLE.COM"]

    statuses = [client.post(SIGN_UP, sign_up_data(email=email)).status_code for email in spellings]

    assert statuses == [302, 302, 429]


def test_an_idn_reader_is_stored_in_punycode_and_shown_in_unicode(client, outbox):
    client.post(SIGN_UP, sign_up_data(email="reader@Bücherei.de"))

    subscriber = Subscriber.objects.get()
    assert subscriber.email == "reader@xn--bcherei-n2a.de"
    [email] = read_outbox(outbox)
    assert email["To"] == "reader@xn--bcherei-n2a.de"
    assert "reader@bücherei.de" in email.get_body(("plain",)).get_content()
    [(_, token), _] = links_in(outbox)
    page = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))
    assert "reader@bücherei.de" in page.content.decode()
