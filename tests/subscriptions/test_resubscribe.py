"""Coming back: an unsubscribed reader's preference link offers "Subscribe again", which sends a
new confirmation; consent is given again and recorded when they confirm."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions import consent, links
from subscriptions.forms import SignUpForm
from subscriptions.models import Subscriber, SuppressionEvent
from tests.conftest import read_outbox
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=90)


@pytest.fixture
def unsubscribed(make_subscriber) -> Subscriber:
    subscriber = make_subscriber(
        topics="mixture of experts\n-survey",
        consent_at=LONG_AGO,
        consent_ip="192.0.2.1",
        consent_text="An older wording",
        confirmed_at=LONG_AGO,
        confirmation_sent_at=LONG_AGO,
    )
    consent.unsubscribe(subscriber, source=SuppressionEvent.Source.LINK, reason="too many emails")
    return subscriber


def preferences_url(subscriber: Subscriber) -> str:
    token = links.make_token(subscriber, "preferences")
    return reverse("subscriptions:preferences", kwargs={"token": token})


def test_unsubscribed_preference_page_offers_subscribe_again_and_no_empty_stop_box(
    client, unsubscribed
):
    page = client.get(preferences_url(unsubscribed)).content.decode()

    assert '<button type="submit" name="action" value="resubscribe">Subscribe again</button>' in (
        page
    )
    assert SignUpForm.consent_text in page
    assert "Stop or pause" not in page
    assert "Pause digests" not in page and ">Unsubscribe</a>" not in page
    assert "Delete my data" in page


def test_subscribe_again_sends_a_new_confirmation_and_confirming_records_consent(
    client, unsubscribed, outbox
):
    response = client.post(preferences_url(unsubscribed), {"action": "resubscribe"})

    assert response.status_code == 200
    assert "Check your inbox: we sent grace@example.org a link to confirm." in (
        response.content.decode()
    )
    unsubscribed.refresh_from_db()
    assert unsubscribed.status == Subscriber.Status.PENDING
    assert unsubscribed.consent_at == LONG_AGO  # not given yet: the email's owner confirms
    [email] = read_outbox(outbox)
    assert email["To"] == "grace@example.org"
    assert email["Subject"] == "Confirm your Paperboy digest"
    [(_, token), _] = links_in(outbox)

    confirm_url = reverse("subscriptions:confirm", kwargs={"token": token})
    asked = client.get(confirm_url).content.decode()
    confirmed = client.post(confirm_url, REMOTE_ADDR="203.0.113.5")

    assert SignUpForm.consent_text in asked
    assert "You're subscribed" in confirmed.content.decode()
    unsubscribed.refresh_from_db()
    assert unsubscribed.status == Subscriber.Status.ACTIVE
    assert unsubscribed.consent_at > unsubscribed.confirmed_at - timedelta(seconds=5)
    assert unsubscribed.confirmed_at > LONG_AGO
    assert (unsubscribed.consent_ip, unsubscribed.consent_text) == (
        "203.0.113.5",
        SignUpForm.consent_text,
    )
    assert (unsubscribed.unsubscribed_at, unsubscribed.unsubscribe_reason) == (None, "")
    assert unsubscribed.topic_lines == ["mixture of experts", "-survey"]  # as they were


def test_subscribe_again_twice_within_the_hour_sends_one_email(client, unsubscribed, outbox):
    client.post(preferences_url(unsubscribed), {"action": "resubscribe"})
    again = client.post(preferences_url(unsubscribed), {"action": "resubscribe"})

    assert "We sent a confirmation link to this address within the hour" in (again.content.decode())
    assert len(read_outbox(outbox)) == 1


def test_subscribe_again_does_nothing_for_an_active_reader(client, make_subscriber, outbox):
    reader = make_subscriber()

    page = client.post(preferences_url(reader), {"action": "resubscribe"}).content.decode()

    assert read_outbox(outbox) == []
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert "Stop or pause" in page


def test_unsubscribed_page_links_to_subscribe_again(client, make_subscriber):
    reader = make_subscriber()
    token = links.make_token(reader, "unsubscribe")

    page = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": token})).content
    assert f'<a href="{links.preferences_url(reader)}">Subscribe again</a>' in page.decode()


def test_confirming_a_new_sign_up_keeps_the_consent_given_at_sign_up(client, outbox):
    client.post("/subscribe/", sign_up_data(), REMOTE_ADDR="198.51.100.4")
    [(_, token), _] = links_in(outbox)

    client.post(reverse("subscriptions:confirm", kwargs={"token": token}), REMOTE_ADDR="10.0.0.9")

    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.consent_ip == "198.51.100.4"


def test_subscribe_again_right_after_a_recent_sign_up_still_gets_its_email(
    client, make_subscriber, outbox
):
    reader = make_subscriber(confirmation_sent_at=timezone.now() - timedelta(minutes=5))
    consent.unsubscribe(reader, source=SuppressionEvent.Source.LINK)

    client.post(preferences_url(reader), {"action": "resubscribe"})

    assert [purpose for purpose, _ in links_in(outbox)] == ["confirm", "preferences"]


def test_unsubscribe_link_opened_again_offers_to_subscribe_again(client, unsubscribed):
    token = links.make_token(unsubscribed, "unsubscribe")

    page = client.get(reverse("subscriptions:unsubscribe", kwargs={"token": token})).content
    assert f'<a href="{links.preferences_url(unsubscribed)}">Subscribe again</a>' in page.decode()
