"""Fixtures of the config tests."""

from datetime import UTC, datetime, timedelta

import pytest

from digest.delivery import rounds
from digest.models import Paper
from subscriptions.models import Subscriber

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def reader(settings, outbox) -> Subscriber:
    """An active reader who was sent one digest (so the archive page exists)."""
    settings.SITE_URL = "http://testserver"
    Paper.objects.create(
        title="Sparse Mixture of Experts",
        title_key="sparse mixture of experts",
        abstract="We train a mixture of experts. It routes tokens.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    subscriber = Subscriber.objects.create(
        email="ada@example.com", topics="mixture of experts", status=Subscriber.Status.ACTIVE
    )
    rounds.run_digest_round(NOW)
    return subscriber
