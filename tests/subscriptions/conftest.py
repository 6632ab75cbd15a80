import re
from pathlib import Path

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

LINK = re.compile(r"https?://\S+/(confirm|preferences|unsubscribe)/([^/\s]+)/")


def sign_up_data(**overrides) -> dict:
    data = {
        "email": "ada@example.org",
        "topics": "mixture of experts\nprotein folding",
        "frequency": "daily",
        "weekday": "0",
        "send_hour": "7",
        "time_zone": "Europe/Paris",
        "website": "",
    }
    data.update(overrides)
    return data


def links_in(folder: Path) -> list[tuple[str, str]]:
    """(purpose, token) of every Paperboy link in the text parts of the outbox, in order."""
    found = []
    for message in read_outbox(folder):
        text = message.get_body(("plain",)).get_content()
        found += LINK.findall(text)
    return found


@pytest.fixture(autouse=True)
def emails_sent_in_process(monkeypatch):
    """Consent emails go through a Celery task; run it in-process, even with a broker configured,
    so a test sees the email in its outbox (test_tasks.py checks the real worker path)."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def make_subscriber(db):
    def make(email: str = "grace@example.org", **fields) -> Subscriber:
        defaults = {
            "status": Subscriber.Status.ACTIVE,
            "topics": "graph neural networks",
            "confirmed_at": timezone.now(),
        }
        return Subscriber.objects.create(email=email, **{**defaults, **fields})

    return make
