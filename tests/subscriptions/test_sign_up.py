"""Signing up through the form: double opt-in, consent of the mailbox owner, bad input, limits."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.forms import SignUpForm
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db

SIGN_UP = "/subscribe/"


def test_sign_up_creates_a_pending_subscriber_and_emails_a_confirmation_link(client, outbox):
    response = client.post(
        SIGN_UP, sign_up_data(email="Ada@Example.ORG"), REMOTE_ADDR="203.0.113.9"
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:check_inbox")
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "Ada@example.org"  # domain normalized, mailbox kept
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.topic_lines == ["mixture of experts", "protein folding"]
    assert (subscriber.time_zone, subscriber.send_hour) == ("Europe/Paris", 7)
    assert subscriber.consent_ip == "203.0.113.9"
    assert subscriber.consent_at is not None
    assert subscriber.consent_text == SignUpForm.consent_text
    assert SignUpForm.consent_text in client.get("/").content.decode()  # what the reader saw
    [email] = read_outbox(outbox)
    assert email["To"] == "Ada@example.org"
    assert email["Subject"] == "Confirm your Paperboy digest"
    assert email.get_body(("html",)).get_content().count("/confirm/") == 1
    assert [purpose for purpose, _ in links_in(outbox)] == ["confirm", "preferences"]


def test_following_the_confirmation_link_asks_then_activates(client, outbox):
    client.post(SIGN_UP, sign_up_data())
    [(_, token), _] = links_in(outbox)
    url = reverse("subscriptions:confirm", kwargs={"token": token})

    page = client.get(url)
    assert page.status_code == 200
    assert b"Yes, start my digest" in page.content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING  # a GET changes nothing

    done = client.post(url)
    assert done.status_code == 200
    assert b"You're subscribed" in done.content
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.confirmed_at is not None


def test_a_used_confirmation_link_says_so_and_changes_nothing(client, outbox):
    client.post(SIGN_UP, sign_up_data())
    [(_, token), _] = links_in(outbox)
    url = reverse("subscriptions:confirm", kwargs={"token": token})
    client.post(url)
    confirmed_at = Subscriber.objects.get().confirmed_at

    again = client.post(url)

    assert again.status_code == 410
    assert b"already used" in again.content
    assert Subscriber.objects.get().confirmed_at == confirmed_at


@pytest.mark.parametrize("status", ["new", "pending", "active"])
def test_sign_up_response_is_the_same_whatever_the_address_state(client, make_subscriber, status):
    if status != "new":
        make_subscriber("ada@example.org", status=status)

    response = client.post(SIGN_UP, sign_up_data())

    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:check_inbox")
    page = client.get(response["Location"])
    assert b"Check your inbox" in page.content


def test_active_subscriber_signing_up_again_gets_an_email_not_a_change(
    client, make_subscriber, outbox
):
    subscriber = make_subscriber("ada@example.org", topics="quantum error correction")
    before = Subscriber.objects.values().get()

    client.post(SIGN_UP, sign_up_data(email="ADA@example.org", topics="spam topics"))

    after = Subscriber.objects.values().get()
    changed = {key for key in before if before[key] != after[key]}
    assert changed <= {"confirmation_sent_at", "updated_at"}
    [email] = read_outbox(outbox)
    assert email["Subject"] == "You already get the Paperboy digest"
    assert [purpose for purpose, _ in links_in(outbox)] == ["preferences"]
    assert email["List-Unsubscribe"].strip().startswith("<http")
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_pending_address_signing_up_again_within_the_hour_gets_no_second_email(client, outbox):
    client.post(SIGN_UP, sign_up_data())
    client.post(SIGN_UP, sign_up_data(topics="diffusion models"))

    assert len(read_outbox(outbox)) == 1
    assert Subscriber.objects.count() == 1
    assert Subscriber.objects.get().topic_lines == ["mixture of experts", "protein folding"]


def test_pending_address_gets_a_new_email_after_an_hour(client, outbox):
    client.post(SIGN_UP, sign_up_data())
    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(minutes=61))

    client.post(SIGN_UP, sign_up_data())

    assert len(read_outbox(outbox)) == 2


def test_unsubscribed_address_signing_up_again_must_confirm_again(client, make_subscriber, outbox):
    make_subscriber("ada@example.org", status=Subscriber.Status.UNSUBSCRIBED)

    client.post(SIGN_UP, sign_up_data())

    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED  # until confirmed
    assert [purpose for purpose, _ in links_in(outbox)] == ["confirm", "preferences"]
    [(_, token), _] = links_in(outbox)
    client.post(reverse("subscriptions:confirm", kwargs={"token": token}))
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


# Consent stays with the mailbox owner (issue 11)

OWNER = {"topics": "graph neural networks", "frequency": "weekly", "weekday": 4, "send_hour": 9,
         "time_zone": "Asia/Tokyo", "papers_per_digest": 5}  # fmt: skip


@pytest.mark.parametrize("status", ["pending", "unsubscribed", "active", "paused"])
def test_an_anonymous_sign_up_for_a_known_address_changes_nothing_on_the_reader(
    client, make_subscriber, outbox, status
):
    make_subscriber("ada@example.org", status=status, consent_ip="198.51.100.1",
                    consent_text="what the owner agreed to", **OWNER)  # fmt: skip
    before = Subscriber.objects.values().get()

    response = client.post(
        SIGN_UP,
        sign_up_data(email="ADA@example.org", topics="spam topics", frequency="daily"),
        REMOTE_ADDR="203.0.113.66",
    )

    assert response.status_code == 302
    after = Subscriber.objects.values().get()
    assert {key for key in before if before[key] != after[key]} <= {
        "confirmation_sent_at",
        "updated_at",
    }


def test_the_new_link_applies_the_requested_preferences_and_records_that_consent(
    client, make_subscriber, outbox
):
    make_subscriber("ada@example.org", status=Subscriber.Status.UNSUBSCRIBED, **OWNER)

    client.post(SIGN_UP, sign_up_data(topics="diffusion models", time_zone="Europe/Paris"),
                REMOTE_ADDR="203.0.113.7")  # fmt: skip
    [email] = read_outbox(outbox)
    assert "diffusion models" in email.get_body(("plain",)).get_content()  # what it asks for
    assert Subscriber.objects.get().topics == OWNER["topics"]
    [(_, token), _] = links_in(outbox)
    client.post(reverse("subscriptions:confirm", kwargs={"token": token}))

    ada = Subscriber.objects.get()
    assert ada.status == Subscriber.Status.ACTIVE
    assert (ada.topics, ada.time_zone, ada.frequency) == (
        "diffusion models",
        "Europe/Paris",
        "daily",
    )
    assert ada.consent_ip == "203.0.113.7"
    assert not ada.sign_up_requests.exists()


def test_the_owners_first_link_confirms_what_the_owner_asked_for(client, outbox):
    client.post(SIGN_UP, sign_up_data(topics="protein folding"))
    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(minutes=61))
    client.post(SIGN_UP, sign_up_data(topics="spam topics"), REMOTE_ADDR="203.0.113.66")
    [(_, owners_token), _, (_, second_token), _] = links_in(outbox)

    client.post(reverse("subscriptions:confirm", kwargs={"token": owners_token}))

    ada = Subscriber.objects.get()
    assert (ada.status, ada.topics) == (Subscriber.Status.ACTIVE, "protein folding")
    used = client.post(reverse("subscriptions:confirm", kwargs={"token": second_token}))
    assert used.status_code == 410
    assert Subscriber.objects.get().topics == "protein folding"


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_a_suppressed_address_is_not_mailed_and_the_page_answers_the_same(
    client, make_subscriber, outbox, status
):
    make_subscriber("ada@example.org", status=status)

    suppressed = client.post(SIGN_UP, sign_up_data())
    Subscriber.objects.all().delete()
    new = client.post(SIGN_UP, sign_up_data(email="new@example.org"))

    assert (suppressed.status_code, suppressed["Location"]) == (new.status_code, new["Location"])
    assert [email["To"] for email in read_outbox(outbox)] == ["new@example.org"]


BAD_SIGN_UPS = {
    "missing email": ({"email": ""}, "This field is required."),
    "malformed email": ({"email": "ada-at-example.org"}, "Enter a valid email address."),
    "no topics": ({"topics": "  \n \n"}, "This field is required."),
    "only exclusions": ({"topics": "-survey\n-benchmark"}, "at least one topic"),
    "too many topics": (
        {"topics": "\n".join(f"topic {n}" for n in range(21))},
        "Up to 20 topics",
    ),
    "overlong topic": ({"topics": "x" * 101}, "under 100 characters"),
    "bare dash": ({"topics": "llm\n-"}, "excludes nothing"),
    "unknown time zone": ({"time_zone": "Mars/Olympus_Mons"}, "Select a valid choice"),
    "hour out of range": ({"send_hour": "24"}, "Select a valid choice"),
    "unknown frequency": ({"frequency": "hourly"}, "Select a valid choice"),
    "unknown weekday": ({"weekday": "9"}, "Select a valid choice"),
    "overlong email": ({"email": "a" * 250 + "@example.org"}, "at most 254 characters"),
    "email with a header injection": (
        {"email": "ada@example.org\nBcc: victim@example.org"},
        "invisible or control character (control character, U+000A, at position 16)",
    ),
}


@pytest.mark.parametrize("case", BAD_SIGN_UPS)
def test_bad_sign_up_shows_the_form_with_the_error_and_changes_nothing(client, outbox, case):
    overrides, message = BAD_SIGN_UPS[case]

    response = client.post(SIGN_UP, sign_up_data(**overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert b'name="email"' in response.content and b'name="topics"' in response.content
    assert not Subscriber.objects.exists()
    assert read_outbox(outbox) == []


def test_bad_sign_up_keeps_what_the_reader_typed(client):
    response = client.post(SIGN_UP, sign_up_data(email="nope", topics="sparse attention"))

    assert b'value="nope"' in response.content
    assert b"sparse attention</textarea>" in response.content


def test_sign_up_without_a_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)

    response = client.post(SIGN_UP, sign_up_data())

    assert response.status_code == 403
    assert b"nothing was sent or changed" in response.content
    assert not Subscriber.objects.exists()


def test_sign_up_with_the_home_page_csrf_token_works():
    client = Client(enforce_csrf_checks=True)
    home = client.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home).group(1)

    response = client.post(SIGN_UP, {**sign_up_data(), "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert Subscriber.objects.count() == 1


def test_honeypot_filled_in_looks_like_success_but_does_nothing(client, outbox):
    response = client.post(SIGN_UP, sign_up_data(website="http://spam.example"))

    assert response.status_code == 302
    assert response["Location"] == reverse("subscriptions:check_inbox")
    assert not Subscriber.objects.exists()
    assert read_outbox(outbox) == []


def test_per_ip_limit_refuses_further_sign_ups_from_that_address(client, settings, outbox):
    settings.SIGNUP_LIMIT_PER_IP = 3
    for n in range(3):
        ok = client.post(
            SIGN_UP, sign_up_data(email=f"r{n}@example.org"), REMOTE_ADDR="198.51.100.7"
        )
        assert ok.status_code == 302

    refused = client.post(SIGN_UP, sign_up_data(email="r9@example.org"), REMOTE_ADDR="198.51.100.7")
    other_ip = client.post(
        SIGN_UP, sign_up_data(email="r8@example.org"), REMOTE_ADDR="198.51.100.8"
    )

    assert refused.status_code == 429
    assert b"Too many attempts" in refused.content
    assert not Subscriber.objects.filter(email="r9@example.org").exists()
    assert other_ip.status_code == 302
    assert len(read_outbox(outbox)) == 4


def test_per_address_limit_refuses_repeated_sign_ups_for_one_address(client, settings):
    settings.SIGNUP_LIMIT_PER_ADDRESS = 2
    for topics in ("a", "b"):
        client.post(SIGN_UP, sign_up_data(topics=topics), REMOTE_ADDR=f"192.0.2.{len(topics)}")

    refused = client.post(SIGN_UP, sign_up_data(email="ADA@example.org", topics="c"))

    assert refused.status_code == 429
    assert Subscriber.objects.get().topic_lines == ["a"]  # the owner's first sign-up


def test_client_ip_comes_from_the_trusted_proxy_header(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        SIGN_UP,
        sign_up_data(),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.50",
    )

    assert Subscriber.objects.get().consent_ip == "203.0.113.50"


def test_get_on_the_sign_up_url_shows_the_form(client):
    response = client.get(SIGN_UP)

    assert response.status_code == 200
    assert b'name="email"' in response.content
