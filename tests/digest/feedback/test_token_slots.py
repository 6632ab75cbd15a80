"""A digest entry is rendered once for every reader who got the paper and completed with each
reader's rating token: joined into the slots of a frame whose markers hold a random per-process
key, so no paper's text can take the token's place (digest/delivery/slotted.py, composing.py)."""

import re
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.delivery import composing
from digest.feedback import ratings
from digest.ingest.latex import readable_latex
from digest.matching import Match
from digest.models import Paper
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db
PERIOD = date(2026, 3, 2)
TITLE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=120)


@pytest.fixture(autouse=True)
def _fresh_blocks():
    composing._blocks.clear()
    composing._frames.clear()


def make_paper(title: str) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title,
        title_key=title.lower()[:300],
        abstract="We route tokens to experts.",
        first_seen=now - timedelta(hours=1),
        last_seen=now,
    )


def reader(email: str) -> Subscriber:
    return Subscriber.objects.get_or_create(
        email=email, defaults={"topics": "experts", "status": Subscriber.Status.ACTIVE}
    )[0]


def bodies(subscriber: Subscriber, paper: Paper, why: str = "Matches 'experts'") -> tuple[str, str]:
    match = Match(
        paper_id=paper.pk,
        score=1.0,
        pinned=False,
        topic="experts",
        matched_terms=("experts",),
        why=why,
    )
    message = composing.compose_digest(subscriber, [match], period=PERIOD)
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    return (parsed.get_body(("plain",)).get_content(), parsed.get_body(("html",)).get_content())


def rating_links(body: str, paper: Paper) -> set[str]:
    return set(re.findall(rf"/papers/{paper.pk}/(?:for|more|less)/([^/\s\"]+)/", body))


# A slot marker's shape with another key (each process draws its own), for every slot a digest
# has; what stood for the token before (composing's link stand-in, older placeholders).
SLOT_NAMES = [
    *("paper_url", "more_url", "less_url", "why", "excerpt", "item0", "item1", "toptitle"),
    *("preheader", "topics", "schedule", "archive_url", "unsubscribe_url", "display_email"),
]
TITLE_TEXTS = [
    *(f"\ue000{'0' * 12}:{name}&\ue001" for name in SLOT_NAMES),
    *(f"\ue000{'0' * 12}:{name}&amp;\ue001" for name in SLOT_NAMES[:3]),
    composing._TOKEN_STAND_IN,
    "reader-token-placeholder-5c1e7d",
    "csrf-token-placeholder-7f3a9c",
    "{{ more_url }}",
]


@pytest.mark.parametrize("text", TITLE_TEXTS)
def test_a_title_holding_what_stands_for_a_readers_part_shows_as_written(text):
    title = f"{text} Attention {text}"
    paper = make_paper(title)
    ada, grace = reader("ada@example.com"), reader("grace@example.com")

    for subscriber, other in ((ada, grace), (grace, ada)):
        body_text, html = bodies(subscriber, paper, why=f"Matches {text}")
        token = ratings.rating_token(subscriber, paper.pk)
        assert readable_latex(title) in body_text  # braces read as LaTeX
        assert escape(readable_latex(title)) in html
        assert body_text.count(token) == 3 and html.count(token) == 3  # page, more, less
        assert rating_links(body_text, paper) == rating_links(html, paper) == {token}
        assert ratings.rating_token(other, paper.pk) not in body_text + html


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=TITLE_TEXT.filter(str.strip), why=TITLE_TEXT)
def test_any_title_and_reason_leave_exactly_the_readers_three_links(title, why):
    composing._blocks.clear()
    composing._frames.clear()
    Paper.objects.all().delete()
    paper = make_paper(title)
    ada = reader("ada@example.com")

    text, html = bodies(ada, paper, why=why)

    token = ratings.rating_token(ada, paper.pk)
    assert text.count(token) == html.count(token) == 3
    assert rating_links(html, paper) == {token}
