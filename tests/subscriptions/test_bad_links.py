"""Links that are tampered, expired, for another purpose or for a deleted reader."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions import links
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db

SIGN_UP = "/subscribe/"


# Bad links


def tampered(token: str) -> str:
    return token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")


@pytest.mark.parametrize(
    ("route", "purpose"),
    [
        ("subscriptions:confirm", "confirm"),
        ("subscriptions:preferences", "preferences"),
        ("subscriptions:erase", "preferences"),
        ("subscriptions:unsubscribe", "unsubscribe"),
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_link_gets_a_clear_page_and_changes_nothing(
    client, make_subscriber, route, purpose, method
):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)
    token = tampered(links.make_token(subscriber, purpose))
    before = Subscriber.objects.values().get()

    response = getattr(client, method)(reverse(route, kwargs={"token": token}))

    assert response.status_code == 400
    assert b"This link doesn" in response.content
    assert Subscriber.objects.values().get() == before


def test_link_for_another_purpose_is_refused(client, make_subscriber):
    subscriber = make_subscriber()
    token = links.make_token(subscriber, "preferences")

    response = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": token}))

    assert response.status_code == 400
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


@pytest.mark.parametrize("token", ["x", "", "..:::", "a" * 500, "%00%ff"])
def test_garbage_tokens_never_cause_a_server_error(client, token):
    if not token:
        assert client.get("/confirm//").status_code == 404
        return
    for route in ("confirm", "preferences", "unsubscribe"):
        response = client.get(f"/{route}/{token}/")
        assert response.status_code == 400
    one_click = client.post(f"/unsubscribe/{token}/one-click/", {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 400


def test_expired_confirmation_link_says_so_and_changes_nothing(client, make_subscriber, settings):
    subscriber = make_subscriber(status=Subscriber.Status.PENDING, confirmed_at=None)
    token = links.make_token(subscriber, "confirm")
    eight_days_later = timezone.now() + timedelta(days=8)

    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=eight_days_later.timestamp()):
        response = client.post(reverse("subscriptions:confirm", kwargs={"token": token}))

    assert response.status_code == 410
    assert b"expired" in response.content
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_link_for_a_deleted_subscriber_gets_a_clear_page(client, make_subscriber):
    subscriber = make_subscriber()
    token = links.make_token(subscriber, "unsubscribe")
    subscriber.delete()
    make_subscriber("someone-else@example.org")  # may reuse the id on some databases

    page = client.post(reverse("subscriptions:unsubscribe", kwargs={"token": token}))
    one_click = client.post(
        reverse("subscriptions:one_click_unsubscribe", kwargs={"token": token}),
        {"List-Unsubscribe": "One-Click"},
    )

    assert page.status_code == 404 and b"no longer exists" in page.content
    assert one_click.status_code == 404
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def test_someone_signed_up_by_a_stranger_can_delete_the_address_from_the_email(client, outbox):
    client.post(SIGN_UP, sign_up_data())
    [_, (purpose, token)] = links_in(outbox)
    assert purpose == "preferences"

    client.post(reverse("subscriptions:erase", kwargs={"token": token}))

    assert not Subscriber.objects.exists()
    assert len(read_outbox(outbox)) == 1  # and nothing more is sent


def test_an_unknown_page_gets_a_readable_not_found_page(client):
    response = client.get("/subscribe/nope/")

    assert response.status_code == 404
    assert b"Nothing here" in response.content
