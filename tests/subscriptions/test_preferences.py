"""The preference page: no login, changes saved, pause and resume, delete my data."""

import pytest
from django.urls import reverse

from subscriptions import links
from subscriptions.models import Subscriber, SuppressionEvent

pytestmark = pytest.mark.django_db


# Preferences


def preferences_page(subscriber: Subscriber) -> str:
    return reverse(
        "subscriptions:preferences", kwargs={"token": links.make_token(subscriber, "preferences")}
    )


def test_preferences_page_works_without_login_and_saves_changes(client, make_subscriber):
    subscriber = make_subscriber()
    url = preferences_page(subscriber)

    page = client.get(url)
    assert page.status_code == 200
    assert b"graph neural networks</textarea>" in page.content

    saved = client.post(
        url,
        {
            "action": "save",
            "topics": "retrieval augmented generation\n-survey",
            "frequency": "weekly",
            "weekday": "4",
            "send_hour": "18",
            "time_zone": "America/Chicago",
            "papers_per_digest": "5",
        },
    )

    assert saved.status_code == 200
    assert b"Saved" in saved.content
    subscriber.refresh_from_db()
    assert subscriber.topic_lines == ["retrieval augmented generation", "-survey"]
    assert (subscriber.frequency, subscriber.weekday, subscriber.send_hour) == ("weekly", 4, 18)
    assert (subscriber.time_zone, subscriber.papers_per_digest) == ("America/Chicago", 5)


def test_bad_preferences_show_the_error_and_save_nothing(client, make_subscriber):
    subscriber = make_subscriber()
    before = Subscriber.objects.values().get()

    response = client.post(
        preferences_page(subscriber),
        {"action": "save", "topics": "", "frequency": "daily", "weekday": "0",
         "send_hour": "99", "time_zone": "UTC", "papers_per_digest": "10"},
    )  # fmt: skip

    assert response.status_code == 400
    assert b"Nothing was saved" in response.content
    assert Subscriber.objects.values().get() == before


def test_pause_and_resume_from_the_preferences_page(client, make_subscriber):
    subscriber = make_subscriber()
    url = preferences_page(subscriber)

    client.post(url, {"action": "pause"})
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PAUSED

    client.post(url, {"action": "resume"})
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE


def test_delete_my_data_asks_then_erases_the_subscriber(client, make_subscriber):
    subscriber = make_subscriber(topics="secret interest")
    token = links.make_token(subscriber, "preferences")
    url = reverse("subscriptions:erase", kwargs={"token": token})

    assert b"Delete everything" in client.get(url).content
    assert Subscriber.objects.exists()
    done = client.post(url)

    assert b"Your data is deleted" in done.content
    assert not Subscriber.objects.exists()
    [event] = SuppressionEvent.objects.all()
    assert (event.kind, event.subscriber) == (SuppressionEvent.Kind.ERASURE, None)
    gone = client.get(reverse("subscriptions:preferences", kwargs={"token": token}))
    assert gone.status_code == 404
    assert b"no longer exists" in gone.content
