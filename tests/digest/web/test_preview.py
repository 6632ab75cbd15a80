"""The digest preview (digest/preview.py): the home page's "see before you subscribe", through
HTTP, and the same preview on the confirmation and preference pages."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.matching import select_papers
from digest.models import Paper
from digest.web import preview as preview_module
from digest.web.home import forget_home_page
from subscriptions import links
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db
PREVIEW = "/preview/"
ABSTRACT = "We study how the method behaves at scale and report what we find on benchmarks."


@pytest.fixture(autouse=True)
def _fresh_home_page():
    forget_home_page()


def paper(title: str, abstract: str = ABSTRACT, *, days_ago: float = 0, **fields) -> Paper:
    seen = timezone.now() - timedelta(days=days_ago)
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=seen,
        last_seen=seen,
        **fields,
    )


@pytest.fixture
def papers() -> list[Paper]:
    return [
        paper("Sparse Mixture of Experts at Scale", upvotes=120, arxiv_id="2611.00001"),
        paper("Routing Tokens in a Mixture of Experts", upvotes=40),
        paper("A Survey of Mixture of Experts", upvotes=300),
        paper("Protein Folding with Language Models", upvotes=80),
        paper("Mixture of Experts, Last Month", upvotes=900, days_ago=20),
        paper("Hidden Mixture of Experts", upvotes=999, hidden=True),
    ]


def listed(page: str) -> list[str]:
    """The titles of the preview's papers, in order."""
    start = page.index('id="preview-title"')
    end = page.find("</section>", start)
    section = page[start : end if end > 0 else None]
    found = re.findall(r"<li>\s*<h3>(?:<a [^>]*>)?(.*?)(?:</a>)?</h3>", section, re.S)
    return [html.unescape(title) for title in found]


def whys(page: str) -> list[str]:
    return [html.unescape(why) for why in re.findall(r'<p class="why">(.*?)</p>', page)]


def test_preview_lists_the_first_digests_papers_in_the_digests_order_with_the_why(client, papers):
    topics = "mixture of experts\n-survey"
    reader = Subscriber.objects.create(email="new@example.org", topics=topics)
    first_digest = select_papers([reader], now=timezone.now())[reader.pk]
    by_id = {p.pk: p.title for p in papers}

    response = client.get(PREVIEW, {"topics": topics})

    assert response.status_code == 200
    page = response.content.decode()
    assert listed(page) == [by_id[match.paper_id] for match in first_digest]
    assert listed(page) == [
        "Sparse Mixture of Experts at Scale",
        "Routing Tokens in a Mixture of Experts",
    ]  # not the survey (excluded), last month's (outside the window) or the hidden one
    assert whys(page) == [match.why for match in first_digest]
    assert 'Matches your topic "mixture of experts" in the title' in whys(page)[0]
    assert (
        f'<h3><a href="/papers/{papers[0].pk}/">Sparse Mixture of Experts at Scale</a></h3>' in page
    )
    assert "leaving out papers that mention <strong>survey</strong>" in page
    assert "2 papers from the past 7 days for <strong>mixture of experts</strong>" in page


def test_preview_with_nothing_matching_says_a_digest_would_skip_that_day(client, papers):
    page = client.get(PREVIEW, {"topics": "quantum error correction"}).content.decode()

    assert listed(page) == []
    assert "No paper from the past 7 days for <strong>quantum error correction</strong>." in page


def test_preview_of_topics_the_form_refuses_says_why(client, papers):
    page = client.get(PREVIEW, {"topics": "-survey"}).content.decode()

    assert "Enter at least one topic you want papers about." in page
    assert listed(page) == []


def test_preview_follows_the_papers_as_they_change(client, papers):
    assert listed(client.get(PREVIEW, {"topics": "protein folding"}).content.decode()) == [
        "Protein Folding with Language Models"
    ]
    now = timezone.now()
    Paper.objects.bulk_create(  # as ingest writes them: no signal
        [Paper(title="Protein Folding in Minutes", title_key="pfm", upvotes=5000,
               abstract=ABSTRACT, first_seen=now, last_seen=now)]
    )  # fmt: skip
    assert listed(client.get(PREVIEW, {"topics": "protein folding"}).content.decode()) == [
        "Protein Folding in Minutes",
        "Protein Folding with Language Models",
    ]

    edited = papers[3]
    edited.title = "Protein Folding with Small Language Models"
    edited.save()  # an editor's fix
    Paper.objects.filter(title_key="pfm").update(hidden=True)
    assert listed(client.get(PREVIEW, {"topics": "protein folding"}).content.decode()) == [
        "Protein Folding with Small Language Models"
    ]


def test_preview_is_rate_limited_per_ip(client, settings, papers):
    settings.PREVIEW_LIMIT_PER_IP = 2
    answers = [
        client.get(PREVIEW, {"topics": "experts"}, REMOTE_ADDR="198.51.100.7") for _ in range(3)
    ]
    other = client.get(PREVIEW, {"topics": "experts"}, REMOTE_ADDR="198.51.100.8")

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "wait a minute" in answers[2].content.decode()
    assert other.status_code == 200


def test_home_page_has_an_empty_preview_that_asks_for_topics(client, papers):
    page = client.get("/").content.decode()

    assert 'data-preview-url="/preview/"' in page
    assert "Type a topic or two and press “Preview”" in page
    assert '<script src="/static/pages/preview.js" defer></script>' in page
    assert "<script>" not in page and "<script nonce" not in page  # static scripts only


def test_preview_button_without_javascript_shows_the_preview_and_keeps_what_was_typed(
    client, papers, outbox
):
    typed = {
        "email": "ada@example.org",
        "topics": "mixture of experts\n-survey",
        "frequency": "weekly",
        "weekday": "4",
        "send_hour": "8",
        "time_zone": "Asia/Tokyo",
        "website": "",
        "action": "preview",
    }

    response = client.post("/", typed)

    page = response.content.decode()
    assert response.status_code == 200
    assert listed(page) == [
        "Sparse Mixture of Experts at Scale",
        "Routing Tokens in a Mixture of Experts",
    ]
    assert 'value="ada@example.org"' in page
    assert ">\nmixture of experts\n-survey</textarea>" in page
    assert re.search(r'<input [^>]*value="weekly"[^>]*checked', page)
    assert '<option value="4" selected>Friday</option>' in page
    assert '<option value="8" selected>08:00</option>' in page
    assert '<option value="Asia/Tokyo" selected>' in page
    assert '<ul class="errorlist' not in page  # nothing was refused: it was not a sign-up
    assert not Subscriber.objects.exists()
    assert read_outbox(outbox) == []


def test_preview_button_needs_the_csrf_token():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/", {"topics": "experts"})

    assert response.status_code == 403


def test_preview_button_is_rate_limited_too(client, settings, papers):
    settings.PREVIEW_LIMIT_PER_IP = 1
    client.post("/", {"topics": "experts", "action": "preview"})

    response = client.post("/", {"topics": "mixture of experts", "action": "preview"})

    assert response.status_code == 429
    assert "wait a minute" in response.content.decode()
    assert ">\nmixture of experts</textarea>" in response.content.decode()  # still kept


def test_confirmation_page_previews_the_saved_topics(client, papers):
    reader = Subscriber.objects.create(email="new@example.org", topics="mixture of experts")
    token = links.make_token(reader, "confirm")

    asked = client.get(reverse("subscriptions:confirm", kwargs={"token": token}))
    confirmed = client.post(reverse("subscriptions:confirm", kwargs={"token": token}))

    for response in (asked, confirmed):
        assert listed(response.content.decode()) == [
            "A Survey of Mixture of Experts",
            "Sparse Mixture of Experts at Scale",
            "Routing Tokens in a Mixture of Experts",
        ]


def test_preference_page_previews_the_saved_topics_at_the_readers_paper_count(client, papers):
    reader = Subscriber.objects.create(
        email="grace@example.org",
        status=Subscriber.Status.ACTIVE,
        topics="mixture of experts",
        papers_per_digest=2,
    )
    url = reverse(
        "subscriptions:preferences", kwargs={"token": links.make_token(reader, "preferences")}
    )

    page = client.get(url).content.decode()

    assert listed(page) == ["A Survey of Mixture of Experts", "Sparse Mixture of Experts at Scale"]
    assert 'data-preview-form="preferences"' in page


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(topics=st.text(max_size=300), limit=st.integers(min_value=-5, max_value=100))
def test_any_typed_topics_preview_without_error(papers, topics, limit):
    preview = preview_module.preview_digest(topics, limit=limit)

    assert len(preview.entries) <= max(1, min(limit, preview_module.MAX_LIMIT))
    assert all(entry.paper.title != "Hidden Mixture of Experts" for entry in preview.entries)
    assert bool(preview.error) <= (not preview.entries)
    page = preview_module.preview_html(topics, limit=limit)
    assert "<script" not in page.replace("&lt;script", "")


def test_preview_before_any_paper_is_ingested_says_nothing_matches_yet(client):
    page = client.get(PREVIEW, {"topics": "mixture of experts"}).content.decode()

    assert "No paper from the past 7 days for <strong>mixture of experts</strong>." in page
