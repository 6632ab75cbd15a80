"""What SpamAssassin (local tests only: -L, no network) thinks of each email Paperboy sends: the
digest, the sign-up confirmation and the unsubscribe receipt, as produced by the real code paths.
Each must score at most 0.5. Skips without spamassassin, fails instead with REQUIRE_SERVICES=1."""

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from config.celery import app as celery_app
from digest.delivery import rounds
from digest.models import Paper
from subscriptions import links
from subscriptions.models import Subscriber
from tests.conftest import REQUIRE_SERVICES
from tests.subscriptions.conftest import links_in, sign_up_data

pytestmark = pytest.mark.django_db
MAX_SCORE = 0.5
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def spamassassin() -> str:
    path = shutil.which("spamassassin")
    if path is None:
        message = "spamassassin is missing (apt-get install spamassassin)"
        if REQUIRE_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES=1 but {message}")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def emails_sent_in_process(monkeypatch, settings):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.SITE_URL = "https://paperboy.example.org"
    settings.DEFAULT_FROM_EMAIL = "Paperboy <digest@paperboy.example.org>"


def spam_report(spamassassin: str, message: Path) -> tuple[float, str]:
    result = subprocess.run(
        [spamassassin, "-L", "-t"], input=message.read_bytes(), capture_output=True, timeout=120
    )
    output = result.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+).*?tests=(.*?)(?:\n\S|$)",
                       output, flags=re.M | re.S)  # fmt: skip
    assert status, output[-2000:]
    return float(status[1]), " ".join(status[2].split()).strip(",")


def newest_email(outbox: Path, seen: set[Path]) -> Path:
    [new] = [path for path in outbox.glob("*.eml") if path not in seen]
    seen.add(new)
    return new


def test_every_email_scores_at_most_half_a_point(spamassassin, client, outbox):
    seen: set[Path] = set()
    client.post("/subscribe/", sign_up_data(email="ada@example.org"))
    confirmation = newest_email(outbox, seen)
    [token] = [token for purpose, token in links_in(outbox) if purpose == "confirm"]
    client.post(reverse("subscriptions:confirm", kwargs={"token": token}))
    for n, title in enumerate(["Sparse Mixture of Experts at Scale", "Routing Tokens to Experts"]):
        Paper.objects.create(
            title=title, title_key=title.lower(), arxiv_id=f"2603.0000{n}", upvotes=40 + n,
            authors=["Ada Lovelace", "Charles Babbage"],
            abstract="We train a mixture of experts model. Tokens are routed to experts.",
            first_seen=NOW - timedelta(hours=2), last_seen=NOW,
        )  # fmt: skip
    Subscriber.objects.update(digests_from=None, time_zone="UTC")
    rounds.run_digest_round(NOW)
    digest = newest_email(outbox, seen)
    reader = Subscriber.objects.get()
    leave = links.unsubscribe_url(reader).removeprefix("https://paperboy.example.org")
    client.post(leave, {"action": "unsubscribe"})
    receipt = newest_email(outbox, seen)

    scores = {
        name: spam_report(spamassassin, path)
        for name, path in [("digest", digest), ("confirmation", confirmation), ("receipt", receipt)]
    }

    print("\n".join(f"{name}: {score} ({tests})" for name, (score, tests) in scores.items()))
    assert {name: score for name, (score, _) in scores.items() if score > MAX_SCORE} == {}, scores
