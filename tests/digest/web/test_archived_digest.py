"""The browser copy of a sent digest (/digest/<token>/) is the email without its inbox-only
parts: the email's "View in browser" links point at the page itself."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from digest.delivery import rounds
from digest.models import Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def digest_email(outbox, settings):
    settings.SITE_URL = "https://paperboy.example.org"
    Paper.objects.create(
        title="Sparse Mixture of Experts",
        title_key="sparse mixture of experts",
        abstract="We train a mixture of experts.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    Subscriber.objects.create(
        email="ada@example.com", topics="mixture of experts", status=Subscriber.Status.ACTIVE
    )
    rounds.run_digest_round(NOW)
    [email] = read_outbox(outbox)
    return email


def archive_path(email) -> str:
    text = email.get_body(("plain",)).get_content()
    url = text.split("View it in your browser: ", 1)[1].split()[0]
    return urlsplit(url).path


def test_the_email_offers_to_view_it_in_the_browser(digest_email):
    html = digest_email.get_body(("html",)).get_content()
    assert html.count(">View in browser</a>") == 2


def test_the_browser_copy_does_not_offer_to_view_it_in_the_browser(client, digest_email):
    page = client.get(archive_path(digest_email)).content.decode()

    assert "Sparse Mixture of Experts" in page
    assert "View in browser" not in page
    assert "Change your topics or schedule" in page
    assert "Unsubscribe" in page
