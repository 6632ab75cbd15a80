"""Whatever text an ESP puts in an event, the webhook answers without a server error and keeps
what a database column can hold (PostgreSQL refuses NUL; UTF-8 cannot carry a lone surrogate)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subscriptions.models import Subscriber
from subscriptions.webhooks import storable
from tests.subscriptions.webhooks.payloads import POSTMARK_URL, post, postmark_bounce
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db
# The client and the reader factory hold no state between examples.
REUSED_FIXTURES = [HealthCheck.function_scoped_fixture]


def test_nul_and_lone_surrogates_are_replaced_and_the_rest_is_kept():
    assert storable("550 \x00user\ud800 unknown") == "550 \ufffduser\ufffd unknown"
    assert storable(None) == ""


@settings(max_examples=150, deadline=None, suppress_health_check=REUSED_FIXTURES)
@given(description=any_text, details=any_text, message_id=any_text)
def test_a_bounce_with_any_text_suppresses_the_reader_and_keeps_its_words(
    esp, make_subscriber, description, details, message_id
):
    Subscriber.objects.all().delete()  # examples share the test's transaction
    reader = make_subscriber("ada@example.org")
    payload = postmark_bounce("ada@example.org", message_id=message_id)
    payload.update(Description=description, Details=details)

    response = post(esp, POSTMARK_URL, payload)

    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    event = reader.suppressions.get()
    assert "\x00" not in event.detail and "\x00" not in event.message_id
    assert event.detail == storable(description or details or "bounced")[:500]


@settings(max_examples=100, deadline=None, suppress_health_check=REUSED_FIXTURES)
@given(recipient=any_text | st.just("ada@example.org\x00"))
def test_a_bounce_for_any_recipient_text_is_answered_without_a_server_error(
    esp, make_subscriber, recipient
):
    Subscriber.objects.all().delete()
    reader = make_subscriber("ada@example.org")

    response = post(esp, POSTMARK_URL, postmark_bounce(recipient))

    assert response.status_code in (200, 400)
    reader.refresh_from_db()
    bounced = reader.status == Subscriber.Status.BOUNCED
    assert bounced == (
        response.status_code == 200
        and "\x00" not in recipient
        and bool(Subscriber.objects.with_email(recipient).exists())
    )
