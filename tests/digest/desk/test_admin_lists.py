"""The editor's lists open in a useful order with the columns they need: papers newest first
(the most upvoted first within a day's dump), readers with their topics."""

from datetime import UTC, datetime, timedelta

import pytest

from digest.models import Paper
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_papers_list_newest_first_then_by_upvotes(admin_client):
    for title, age_days, upvotes in [
        ("Old but loved", 3, 900),
        ("Fresh and quiet", 0, 4),
        ("Fresh and loved", 0, 250),
        ("From yesterday", 1, 40),
    ]:
        seen = NOW - timedelta(days=age_days)
        Paper.objects.create(
            title=title, title_key=title.lower(), upvotes=upvotes, first_seen=seen, last_seen=seen
        )

    page = admin_client.get("/admin/digest/paper/").content.decode()

    titles = ["Fresh and loved", "Fresh and quiet", "From yesterday", "Old but loved"]
    positions = [page.index(f">{title}</a>") for title in titles]
    assert positions == sorted(positions)


def test_subscriber_list_shows_each_readers_topics(admin_client):
    Subscriber.objects.create(email="ada@example.org", topics="mixture of experts\ndiffusion")

    page = admin_client.get("/admin/subscriptions/subscriber/").content.decode()

    assert "column-topic_list" in page
    assert "mixture of experts · diffusion" in page
