"""The public pages in a real browser at phone and desktop width: nothing wider than the screen,
the navigation in view. Screenshots go to screenshots/ (40-… for these pages)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from digest.models import Paper
from tests.conftest import SCREENSHOTS
from tests.subscriptions.test_browser import SIZES

pytestmark = pytest.mark.browser
ABSTRACT = (
    "We study how sparse models scale with data, compute and parameters, and find simple laws "
    "that predict quality across three orders of magnitude of training compute."
)
PAGES = {
    "40-today": "/today/",
    "41-archive": "/archive/",
    "42-archive-day": "/archive/{yesterday}/",
    "43-not-found": "/no-such-page/",
}


@pytest.fixture
def papers(transactional_db) -> None:
    now = timezone.now()
    titles = [
        ("Scaling Sparse Mixture-of-Experts Without Tears", 312, now),
        ("Protein Language Models Learn Folding Pathways", 188, now),
        ("Routing Tokens in a Mixture of Experts", 120, now),
        ("Yesterday: Quantization at Four Bits, a Long Title That Has to Wrap on a Phone", 77,
         now - timedelta(days=1)),
    ]  # fmt: skip
    for n, (title, upvotes, seen) in enumerate(titles):
        Paper.objects.create(
            title=title, title_key=f"paper-{n}", upvotes=upvotes, first_seen=seen, last_seen=seen,
            authors=["Ada Lovelace", "Charles Babbage", "Grace Hopper", "Alan Turing"],
            abstract=ABSTRACT, arxiv_id=f"2611.0000{n}",
        )  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_public_pages_fit_the_screen_and_show_the_navigation(browser, live_server, papers, size):
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    context = browser.new_context(viewport=SIZES[size])
    page = context.new_page()
    SCREENSHOTS.mkdir(exist_ok=True)
    for name, path in PAGES.items():
        page.goto(live_server.url + path.format(yesterday=yesterday))

        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, size, overflow)
        assert page.locator("nav.site-nav").is_visible()
        assert page.locator("footer.site nav").is_visible()
        assert page.locator("header.site").evaluate("e => getComputedStyle(e).display") == "flex"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    context.close()


def test_the_500_page_is_styled_in_the_browser(browser, live_server, settings):
    settings.ROOT_URLCONF = "tests.digest.web.failing_urls"
    settings.DEBUG = False
    for size_name, size in SIZES.items():
        context = browser.new_context(viewport=size)
        page = context.new_page()
        response = page.goto(live_server.url + "/fails/")

        assert response.status == 500
        # The style block ran (its nonce matched the policy): the header is laid out as a row.
        assert page.locator("header.site").evaluate("e => getComputedStyle(e).display") == "flex"
        page.screenshot(path=str(SCREENSHOTS / f"44-server-error-{size_name}.png"), full_page=True)
        context.close()
