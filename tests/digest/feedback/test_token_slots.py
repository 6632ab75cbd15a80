"""A digest entry is rendered once for every reader who got the paper and completed with each
reader's rating token: joined from the parts around a random slot, so no paper's text can take
the token's place (digest/feedback/ratings.py token_slot, digest/delivery/composing.py)."""

import re
import secrets
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone
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
    composing._items.clear()


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


def test_a_title_holding_the_drawn_slot_gets_another_slot(monkeypatch):
    """The slot is random, so no one can write it into a title; were a title to hold the one
    drawn, another is drawn."""
    colliding = "0123456789abcdef0123456789abcdef"
    paper = make_paper(f"Sparse experts {colliding} at scale")
    draws = iter([colliding, colliding, "f" * 32, colliding, "e" * 32])
    monkeypatch.setattr(secrets, "token_hex", lambda _bytes: next(draws))
    ada = reader("ada@example.com")

    text, html = bodies(ada, paper, why=f"Matches 'experts' {colliding}")

    token = ratings.rating_token(ada, paper.pk)
    assert f"Sparse experts {colliding} at scale" in text
    assert f"Sparse experts {colliding} at scale" in html
    assert text.count(token) == 3 and html.count(token) == 3  # page, more, less
    assert rating_links(text, paper) == rating_links(html, paper) == {token}


@pytest.mark.parametrize(
    "text",
    ["reader-token-placeholder-5c1e7d", "csrf-token-placeholder-7f3a9c", "{{ more_url }}"],
)
def test_a_title_holding_what_stood_for_the_token_shows_as_written(text):
    paper = make_paper(f"{text} Attention {text}")
    ada, grace = reader("ada@example.com"), reader("grace@example.com")

    for subscriber, other in ((ada, grace), (grace, ada)):
        body_text, html = bodies(subscriber, paper)
        token = ratings.rating_token(subscriber, paper.pk)
        assert readable_latex(f"{text} Attention {text}") in body_text  # braces read as LaTeX
        assert body_text.count(token) == 3 and html.count(token) == 3
        assert ratings.rating_token(other, paper.pk) not in body_text + html


def test_token_slot_is_never_one_of_the_texts_it_is_checked_against(monkeypatch):
    draws = iter(["a" * 32, "b" * 32, "c" * 32])
    monkeypatch.setattr(secrets, "token_hex", lambda _bytes: next(draws))

    assert ratings.token_slot("x" + "a" * 32, "b" * 32) == "c" * 32


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=TITLE_TEXT.filter(str.strip), why=TITLE_TEXT)
def test_any_title_and_reason_leave_exactly_the_readers_three_links(title, why):
    composing._blocks.clear()
    composing._items.clear()
    Paper.objects.all().delete()
    paper = make_paper(title)
    ada = reader("ada@example.com")

    text, html = bodies(ada, paper, why=why)

    token = ratings.rating_token(ada, paper.pk)
    assert text.count(token) == html.count(token) == 3
    assert rating_links(html, paper) == {token}


@settings(max_examples=200, deadline=None)
@given(st.lists(TITLE_TEXT, max_size=5))
def test_token_slot_of_any_texts_is_in_none_of_them(texts):
    slot = ratings.token_slot(*texts)

    assert re.fullmatch(r"[0-9a-f]{32}", slot)
    assert not any(slot in text for text in texts)
