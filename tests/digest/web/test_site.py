"""What every page carries (navigation, footer, favicon) and the styled 404 and 500 pages."""

import re

import pytest
from django.test import Client

from tests.config.test_csp import assert_passes_its_policy
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.django_db


def nav_links(html: str, label: str) -> list[str]:
    [nav] = re.findall(rf'<nav[^>]*aria-label="{label}">(.*?)</nav>', html, flags=re.S)
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("path", ["/", "/today/", "/archive/", "/subscribe/check-your-inbox/"])
def test_every_page_has_the_site_navigation_and_footer(client, path):
    html = client.get(path).content.decode()

    assert nav_links(html, "Site") == ["/today/", "/archive/", "/#sign-up"]
    assert nav_links(html, "Footer") == ["/", "/today/", "/archive/", "/feed/"]
    assert "link to change your preferences, pause or unsubscribe" in html


def test_navigation_marks_the_page_the_reader_is_on(client):
    html = client.get("/archive/").content.decode()

    assert '<a href="/archive/" aria-current="page">Archive</a>' in html
    assert 'href="/today/" aria-current' not in html


def test_favicon_ico_is_served_at_the_root(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == (PROJECT_DIR / "static/pages/favicon.ico").read_bytes()
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert "max-age" in response["Cache-Control"]


def test_an_unknown_page_is_the_styled_404_with_the_navigation(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Nothing here</h1>" in html and nav_links(html, "Site")
    assert 'href="/today/"' in html
    assert_passes_its_policy(response)  # the style carries this response's nonce


def test_a_failing_view_gives_the_styled_500_whose_style_the_policy_allows(settings):
    settings.ROOT_URLCONF = "tests.digest.web.failing_urls"
    settings.DEBUG = False

    response = Client(raise_request_exception=False).get("/fails/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html and nav_links(html, "Site")
    assert "the database went away" not in html
    assert_passes_its_policy(response)
    assert re.search(r'<style nonce="[^"]+">', html)


def test_the_500_page_falls_back_to_plain_html_when_it_cannot_render(settings, monkeypatch):
    settings.ROOT_URLCONF = "tests.digest.web.failing_urls"
    from digest.web import site

    def broken(*args, **kwargs):
        raise RuntimeError("templates are gone too")

    monkeypatch.setattr(site, "render_to_string", broken)

    response = Client(raise_request_exception=False).get("/fails/")

    assert response.status_code == 500
    assert b"Something went wrong" in response.content
