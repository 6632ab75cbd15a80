"""The browser copy of a sent digest (/digest/<token>/) is the email without its inbox-only
parts: the email's "View in browser" links point at the page itself."""

from urllib.parse import urlsplit

import pytest

from tests.digest.sent_digest import send_one_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def digest_email(outbox, settings):
    settings.SITE_URL = "https://paperboy.example.org"
    return send_one_digest(
        outbox, title="Sparse Mixture of Experts", abstract="We train a mixture of experts."
    )


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
