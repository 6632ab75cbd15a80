"""The home page: today's trending papers (digest/trending.py) and the sign-up form."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digest.models import Paper
from digest.web.home import forget_home_page
from digest.web.trending import trending_papers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_home_page():
    forget_home_page()


def paper(title: str, *, upvotes: int = 0, days_ago: int = 0, **fields) -> Paper:
    seen = timezone.now() - timedelta(days=days_ago)
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        upvotes=upvotes,
        first_seen=seen,
        last_seen=seen,
        **fields,
    )


def test_trending_lists_the_newest_ingest_day_by_upvotes_in_one_query():
    paper("Yesterday's star", upvotes=500, days_ago=1)
    paper("Quiet today", upvotes=3)
    paper("Loud today", upvotes=90)
    paper("Hidden today", upvotes=999, hidden=True)

    with CaptureQueriesContext(connection) as queries:
        papers = trending_papers()

    assert [p.title for p in papers] == ["Loud today", "Quiet today"]
    assert len(queries) == 1


def test_trending_is_empty_without_papers():
    assert trending_papers() == []


def test_home_page_shows_what_paperboy_is_the_papers_and_the_sign_up_form(client):
    shown = paper("Sparse Mixture of Experts at Scale", upvotes=42,
                  authors=["A. Lovelace", "C. Babbage"],
                  abstract="We route tokens to experts.", arxiv_id="2611.00001")  # fmt: skip

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "trending research papers" in html
    assert "Sparse Mixture of Experts at Scale" in html
    assert f'href="/papers/{shown.pk}/"' in html and "A. Lovelace, C. Babbage" in html
    assert 'action="/subscribe/"' in html
    for name in ("email", "topics", "frequency", "weekday", "send_hour", "time_zone"):
        assert f'name="{name}"' in html
    assert '<option value="Europe/Paris">' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_home_page_escapes_paper_text(client):
    paper("<script>alert(1)</script> Attention", upvotes=1)

    html = client.get("/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Attention" in html


def test_home_page_costs_at_most_one_query_and_none_once_cached(client):
    paper("Cached paper", upvotes=5)

    with CaptureQueriesContext(connection) as first:
        client.get("/")
    forget_home_page()  # another web process: the papers come from the shared cache
    with CaptureQueriesContext(connection) as second:
        page = client.get("/")

    assert len(first) == 1
    assert len(second) == 0
    assert "Cached paper" in page.content.decode()


def test_each_visitor_gets_their_own_csrf_token_in_the_cached_page():
    from django.test import Client

    pages = [Client().get("/") for _ in range(2)]

    tokens = [page.cookies["csrftoken"].value for page in pages]
    assert tokens[0] != tokens[1]
    for page in pages:
        assert 'name="csrfmiddlewaretoken" value="' in page.content.decode()


def test_home_page_says_so_when_there_are_no_papers_yet(client):
    assert "No papers yet today" in client.get("/").content.decode()
