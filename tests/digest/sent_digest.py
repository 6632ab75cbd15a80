"""One reader's digest of one paper, sent and parsed back from the outbox: the email whose
links the archive and preference tests follow."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from digest.delivery import rounds
from digest.models import Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def send_one_digest(outbox: Path, *, title: str, abstract: str) -> EmailMessage:
    Paper.objects.create(
        title=title,
        title_key="sparse mixture of experts",
        abstract=abstract,
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )
    Subscriber.objects.create(
        email="ada@example.com", topics="mixture of experts", status=Subscriber.Status.ACTIVE
    )
    rounds.run_digest_round(NOW)
    [email] = read_outbox(outbox)
    return email
