"""Unsubscribing: the page with a reason, and RFC 8058 one-click."""

import pytest
from django.test import Client

from subscriptions import links
from subscriptions.models import Subscriber, SuppressionEvent

pytestmark = pytest.mark.django_db


# Unsubscribe


def test_unsubscribe_page_asks_then_unsubscribes_with_the_reason(client, make_subscriber):
    subscriber = make_subscriber()
    url = links.unsubscribe_url(subscriber).removeprefix("http://localhost:8000")

    page = client.get(url)
    assert b"Stop sending the Paperboy digest" in page.content
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE

    done = client.post(url, {"reason": "too many emails"})

    assert b"You're unsubscribed" in done.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert subscriber.unsubscribe_reason == "too many emails"
    [event] = subscriber.suppressions.all()
    assert (event.kind, event.source) == ("unsubscribe", "link")


def test_one_click_unsubscribe_needs_no_cookie_or_csrf_token_and_acts_at_once(make_subscriber):
    subscriber = make_subscriber()
    client = Client(enforce_csrf_checks=True)
    url = links.one_click_unsubscribe_url(subscriber).removeprefix("http://localhost:8000")

    response = client.post(url, "List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert response.status_code == 200
    assert not response.cookies
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.suppressions.get().source == SuppressionEvent.Source.ONE_CLICK


def test_one_click_post_twice_records_one_unsubscribe(client, make_subscriber):
    subscriber = make_subscriber()
    url = links.one_click_unsubscribe_url(subscriber)
    for _ in range(2):
        assert client.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 200

    assert subscriber.suppressions.count() == 1


def test_one_click_without_the_rfc_8058_body_changes_nothing(client, make_subscriber):
    subscriber = make_subscriber()
    url = links.one_click_unsubscribe_url(subscriber)

    response = client.post(url, {"something": "else"})

    assert response.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_one_click_url_opened_in_a_browser_leads_to_the_confirm_page(client, make_subscriber):
    subscriber = make_subscriber()

    response = client.get(links.one_click_unsubscribe_url(subscriber), follow=True)

    assert b"Stop sending the Paperboy digest" in response.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
