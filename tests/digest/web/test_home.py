"""The home page takes the visitor's CSRF token and CSP nonce through the template context, so a
paper whose title holds what used to stand in for them (or looks like either) breaks nothing
(digest/web/home.py)."""

import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.ingest.latex import readable_latex
from digest.models import Paper
from digest.web.home import forget_home_page
from subscriptions.models import Subscriber
from tests.subscriptions.conftest import sign_up_data

pytestmark = pytest.mark.django_db

# What the cached page used to substitute for the token and the nonce, and text like either.
SLOT_TEXTS = [
    "csrf-token-placeholder-7f3a9c",
    "csp-nonce-placeholder-2b8e41",
    "reader-token-placeholder-5c1e7d",
    'csrfmiddlewaretoken" value="x',
    "{% csrf_token %} {{ csp_nonce }}",
]


@pytest.fixture(autouse=True)
def _fresh_home_page():
    forget_home_page()
    yield
    forget_home_page()


def trending(title: str) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title, title_key=title.lower(), upvotes=50, first_seen=now, last_seen=now
    )


def nonce_of(response) -> str:
    return re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)


def form_token(page: str) -> str:
    [token] = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    return token


def assert_page_is_intact(client: Client, response, title: str) -> None:
    page = response.content.decode()
    nonce = nonce_of(response)
    assert escape(readable_latex(title)) in page  # as written, its braces read as LaTeX groups
    assert page.count(nonce) == page.count(f'nonce="{nonce}"') >= 1  # only where it belongs
    token = form_token(page)
    assert page.count(token) == 1
    signed_up = client.post("/subscribe/", {**sign_up_data(), "csrfmiddlewaretoken": token})
    assert signed_up.status_code == 302, signed_up.content.decode()[:500]
    assert Subscriber.objects.filter(email="ada@example.org").exists()


@pytest.mark.parametrize("text", SLOT_TEXTS)
def test_a_title_holding_a_slots_text_renders_safely_and_sign_up_still_works(text):
    title = f"{text} Attention is all you need {text}"
    trending(title)
    client = Client(enforce_csrf_checks=True)

    response = client.get("/")

    assert response.status_code == 200
    assert_page_is_intact(client, response, title)


def test_two_visitors_of_the_same_rendered_parts_get_their_own_token_and_nonce():
    trending("Sparse experts")
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)

    pages = [first.get("/"), second.get("/")]

    assert nonce_of(pages[0]) != nonce_of(pages[1])
    assert form_token(pages[0].content.decode()) != form_token(pages[1].content.decode())
    for nonce, page in ((nonce_of(p), p.content.decode()) for p in pages):
        assert f'<style nonce="{nonce}">' in page


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=200
    ).filter(str.strip)
)
def test_any_trending_title_leaves_the_token_and_nonce_where_they_belong(title):
    Paper.objects.all().delete()
    Subscriber.objects.all().delete()
    forget_home_page()
    cache.clear()
    trending(title)
    client = Client(enforce_csrf_checks=True)

    assert_page_is_intact(client, client.get("/"), title)
