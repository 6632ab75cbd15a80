"""What a new reader sees between the sign-up form and the first digest: "check your inbox" and
the confirmation email, read back with the email package."""

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from config.emails import render_email
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.conftest import sign_up_data

pytestmark = pytest.mark.django_db
SIGN_UP = "/subscribe/"


def test_check_your_inbox_repeats_the_address_so_a_typo_shows(client):
    response = client.post(SIGN_UP, sign_up_data(email="ada@exmaple.org"), follow=True)

    page = response.content.decode()
    assert response.redirect_chain == [(reverse("subscriptions:check_inbox"), 302)]
    assert '<strong class="address">ada@exmaple.org</strong>' in page
    assert "Not your address, or a typo?" in page
    assert "exmaple" not in response.redirect_chain[0][0]  # not in the URL, nor in logs


def test_check_your_inbox_cannot_be_made_to_say_another_address(client):
    client.cookies["signed_up"] = "evil@example.org"  # not signed by the server

    page = client.get(reverse("subscriptions:check_inbox")).content.decode()

    assert "evil@example.org" not in page
    assert "If that address can receive our email" in page


@pytest.fixture
def confirmation(client, outbox):
    client.post(
        SIGN_UP,
        sign_up_data(
            topics="mixture of experts\n<b>bold</b> & fast models\n-survey\n-benchmark",
            frequency="weekly",
            weekday="4",
            send_hour="8",
            time_zone="America/New_York",
        ),
    )
    [email] = read_outbox(outbox)
    return email


def test_confirmation_text_lists_topics_and_exclusions_apart_unescaped(confirmation):
    text = confirmation.get_body(("plain",)).get_content()

    assert "Topics:\n  - mixture of experts\n  - <b>bold</b> & fast models\n" in text
    assert "Leaving out papers that mention:\n  - survey\n  - benchmark\n" in text
    assert "- -" not in text
    assert "&lt;" not in text and "&amp;" not in text


def test_confirmation_states_frequency_and_send_time_in_the_readers_zone(confirmation):
    text = confirmation.get_body(("plain",)).get_content()
    html = confirmation.get_body(("html",)).get_content()

    assert "When: every Friday at 08:00 (America/New York), up to 10 papers a digest." in text
    assert "Every Friday at 08:00 (America/New York), up to 10 papers a digest" in html


def test_confirmation_says_how_to_change_them(confirmation):
    text = confirmation.get_body(("plain",)).get_content()
    html = confirmation.get_body(("html",)).get_content()

    assert (
        "To change your topics, exclusions, frequency or send time (before or after confirming)"
        in text
    )
    assert "/preferences/" in text.split("To change your topics")[1]
    assert "Change your topics, exclusions, frequency or send time</a>" in html


def test_confirmation_html_escapes_what_the_reader_typed(confirmation):
    html = confirmation.get_body(("html",)).get_content()

    assert "<strong>&lt;b&gt;bold&lt;/b&gt; &amp; fast models</strong>" in html
    assert "papers that mention <strong>survey</strong> or <strong>benchmark</strong>" in html
    assert "<b>bold</b>" not in html


def test_weekly_on_says_it_is_for_weekly_digests_until_a_script_hides_it(client):
    page = client.get("/").content.decode()

    assert '<label for="id_weekday">Weekly on (weekly only)</label>' in page
    assert '<script src="/static/pages/weekday.js" defer></script>' in page


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_typed_topics_come_back_verbatim_in_the_text_part(topics):
    reader = Subscriber(email="ada@example.org", topics=topics, time_zone="Europe/Paris")
    context = {"subscriber": reader, "confirm_url": "C", "preferences_url": "P", "lifetime_days": 7}

    _, text, _ = render_email("confirm", context)

    for topic in reader.wanted_topics:
        assert f"  - {topic}\n" in text
    for word in reader.excluded_words:
        assert f"  - {word}\n" in text.split("Leaving out papers that mention:")[1]
    assert len(reader.wanted_topics) + len(reader.excluded_words) <= len(reader.topic_lines)
    assert "When: every day at 07:00 (Europe/Paris)" in text
