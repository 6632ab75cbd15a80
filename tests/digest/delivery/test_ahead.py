"""Composing one digest ahead in a thread of its own (digest/delivery/ahead.py): it reads no
database, composes in the sending thread's language, and a digest that fails there fails alone."""

import pytest
from django.utils import translation

from digest.delivery import messages, sending
from digest.delivery.sending import Outcome
from digest.models import Delivery, Paper
from tests.digest.delivery.delivery_records import ScriptedBackend

pytestmark = pytest.mark.django_db


def test_a_digest_whose_composing_asks_the_database_fails_alone(planned, monkeypatch):
    real_compose = messages.compose_digest

    def compose_digest(subscriber, matches, **kwargs):
        if subscriber.email == "grace@example.com":
            Paper.objects.count()  # something the chunk's loading left out
        return real_compose(subscriber, matches, **kwargs)

    monkeypatch.setattr(messages, "compose_digest", compose_digest)
    backend = ScriptedBackend()

    results = sending.send_deliveries(planned, connection=backend)

    grace = Delivery.objects.get(subscriber__email="grace@example.com")
    assert results[grace.pk].outcome == Outcome.FAILED
    assert grace.error.startswith("composing failed: ComposingQueried: composing a digest reads")
    assert sorted(message.to[0] for message in backend.sent) == [
        "ada@example.com",
        "alan@example.com",
    ]


def test_digests_are_composed_in_the_language_of_the_thread_that_sends(planned, monkeypatch):
    real_compose = messages.compose_digest
    languages = []

    def compose_digest(subscriber, matches, **kwargs):
        languages.append(translation.get_language())
        return real_compose(subscriber, matches, **kwargs)

    monkeypatch.setattr(messages, "compose_digest", compose_digest)

    with translation.override("de"):
        sending.send_deliveries(planned, connection=ScriptedBackend())

    assert languages == ["de", "de", "de"]
