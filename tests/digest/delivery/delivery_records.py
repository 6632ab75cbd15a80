"""Small records, an ESP that fails on cue, and what the outbox got, for the delivery tests."""

from datetime import UTC, datetime, timedelta

import requests
from anymail.exceptions import (
    AnymailRequestsAPIError,
)
from django.core.mail.backends.base import BaseEmailBackend

from digest.models import Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday


def make_paper(title: str, abstract: str = "", *, seen: datetime = NOW, **fields) -> Paper:
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=seen - timedelta(hours=2),
        last_seen=seen,
        **fields,
    )


def make_subscriber(email: str, topics: str = "mixture of experts", **fields) -> Subscriber:
    fields.setdefault("send_hour", 7)
    return Subscriber.objects.create(
        email=email, topics=topics, status=Subscriber.Status.ACTIVE, **fields
    )


def api_error(status: int) -> AnymailRequestsAPIError:
    """What anymail raises for an HTTP error answer from the ESP."""
    response = requests.Response()
    response.status_code, response.reason, response._content = status, "busy", b"{}"
    return AnymailRequestsAPIError("ESP said no", response=response)


def sent_to(outbox) -> list[str]:
    return sorted(email["To"] for email in read_outbox(outbox))


class ScriptedBackend(BaseEmailBackend):
    """Raises the error scripted for an address, otherwise records the message."""

    def __init__(self, errors: dict[str, Exception] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.errors = errors or {}
        self.sent = []
        self.opened = 0

    def open(self) -> bool:
        self.opened += 1
        return True

    def send_messages(self, messages) -> int:
        for message in messages:
            error = self.errors.get(message.to[0])
            if error:
                raise error
            self.sent.append(message)
        return len(messages)


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
