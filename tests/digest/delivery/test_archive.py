"""The links of a sent digest, followed from the email parsed back with `email`, through the
test client: view in browser (digest/archive.py and its view), preferences, unsubscribe, and the
List-Unsubscribe one-click endpoint."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from digest.delivery import rounds
from digest.models import Delivery, Paper
from subscriptions.models import Subscriber
from tests.digest.sent_digest import NOW, send_one_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def digest_email(outbox, settings):
    settings.SITE_URL = "https://paperboy.example.org"
    return send_one_digest(
        outbox,
        title="Sparse <Mixture> of Experts",
        abstract="We train a mixture of experts. It routes tokens.",
    )


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "paperboy.example.org"
    return parts.path


def html_link(email, label: str) -> str:
    html = email.get_body(("html",)).get_content()
    return re.search(rf'<a href="([^"]+)"[^>]*>{label}</a>', html).group(1)


def test_view_in_browser_shows_the_digest(client, digest_email):
    response = client.get(path_of(html_link(digest_email, "View in browser")))

    assert response.status_code == 200
    assert "Sparse &lt;Mixture&gt; of Experts" in response.content.decode()
    assert response["X-Robots-Tag"] == "noindex"


def test_view_in_browser_link_in_the_text_part_is_the_same(digest_email):
    text = digest_email.get_body(("plain",)).get_content()
    assert f"View it in your browser: {html_link(digest_email, 'View in browser')}" in text


def test_tampered_archive_link_is_not_found(client, digest_email):
    path = path_of(html_link(digest_email, "View in browser"))
    assert client.get(path[:-3] + "xx/").status_code == 404


def test_archive_link_of_a_skipped_digest_is_not_found(client, digest_email):
    path = path_of(html_link(digest_email, "View in browser"))
    Delivery.objects.update(status=Delivery.Status.SKIPPED)
    assert client.get(path).status_code == 404


def test_preferences_link_opens_the_preferences_page(client, digest_email):
    response = client.get(path_of(html_link(digest_email, "Change your topics or schedule")))
    assert response.status_code == 200
    assert "mixture of experts" in response.content.decode()


def test_unsubscribe_link_opens_the_unsubscribe_page(client, digest_email):
    response = client.get(path_of(html_link(digest_email, "Unsubscribe")))
    assert response.status_code == 200


def test_one_click_unsubscribe_header_unsubscribes_with_a_post(client, digest_email):
    url = re.search(r"<(https://[^>]+)>", digest_email["List-Unsubscribe"]).group(1)

    response = client.post(path_of(url), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED


def test_a_compressed_archive_link_made_before_still_shows_the_digest(client, outbox):
    """Archive tokens were zlib-compressed when that made them shorter (a large reader id);
    they are signed uncompressed now, and the links already sent keep working."""
    from django.core import signing

    from digest.delivery import archive

    Paper.objects.create(
        title="Sparse Experts",
        title_key="sparse experts",
        abstract="We train a mixture of experts.",
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    reader = Subscriber.objects.create(
        pk=111_111_111_111, email="ada@example.com", topics="experts", status="active"
    )
    rounds.run_digest_round(NOW)
    period = Delivery.objects.get(status=Delivery.Status.SENT).period
    payload = [reader.pk, period.isoformat(), archive._fingerprint(reader.email)]
    old = signing.Signer(salt=archive.SALT).sign_object(payload, compress=True)
    new = archive.archive_token(reader, period)
    assert old.startswith(".") and not new.startswith(".")

    for token in (old, new):
        response = client.get(f"/digest/{token}/")
        assert response.status_code == 200 and "Sparse Experts" in response.content.decode()
