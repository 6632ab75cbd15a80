"""The home page's digest preview in a real browser, with JavaScript on and off. Screenshots at
phone and desktop width go to screenshots/."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from digest.models import Paper
from digest.web.home import forget_home_page
from subscriptions.models import Subscriber
from tests.subscriptions.test_browser import SIZES, shoot

pytestmark = pytest.mark.browser
ABSTRACT = (
    "We study how sparse models scale with data, compute and parameters, and find simple laws "
    "that predict quality across three orders of magnitude."
)


@pytest.fixture
def papers(transactional_db) -> None:
    forget_home_page()
    now = timezone.now()
    for n, (title, upvotes) in enumerate(
        [
            ("Scaling Sparse Mixture-of-Experts Without Tears", 312),
            ("Routing Tokens in a Mixture of Experts", 120),
            ("A Survey of Mixture of Experts", 97),
            ("Protein Language Models Learn Folding Pathways", 188),
        ]
    ):
        Paper.objects.create(
            title=title, title_key=f"paper-{n}", upvotes=upvotes, first_seen=now, last_seen=now,
            authors=["Ada Lovelace", "Charles Babbage", "Grace Hopper", "Alan Turing"],
            abstract=ABSTRACT, arxiv_id=f"2611.0000{n}",
        )  # fmt: skip


def preview_titles(page) -> list[str]:
    return page.locator("#preview ol.papers h3").all_inner_texts()


def test_preview_updates_as_the_reader_types_with_javascript(browser, live_server, papers):
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.goto(live_server.url + "/")
    assert "Type a topic or two" in page.locator("#preview").inner_text()
    assert page.locator("select[name=weekday]").is_hidden()  # Daily is chosen
    page.check("input[name=frequency][value=weekly]")
    assert page.locator("select[name=weekday]").is_visible()
    assert page.locator("label[for=id_weekday]").inner_text() == "Weekly on"
    page.check("input[name=frequency][value=daily]")
    assert page.locator("select[name=weekday]").is_hidden()

    page.fill("input[name=email]", "ada@example.org")
    page.locator("textarea[name=topics]").press_sequentially("mixture of experts\n-survey")
    expect(page.locator("#preview ol.papers li")).to_have_count(2, timeout=10_000)

    assert preview_titles(page) == [
        "Scaling Sparse Mixture-of-Experts Without Tears",
        "Routing Tokens in a Mixture of Experts",
    ]
    assert "Matches your topic" in page.locator("#preview p.why").first.inner_text()
    assert "leaving out papers that mention survey" in page.locator("#preview").inner_text()
    shoot(page, "10-home-with-preview")
    assert not Subscriber.objects.exists()
    context.close()


def test_preview_button_works_without_javascript(browser, live_server, papers):
    context = browser.new_context(viewport=SIZES["desktop"], java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server.url + "/")
    assert page.locator("label[for=id_weekday]").inner_text() == "Weekly on (weekly only)"

    page.fill("input[name=email]", "ada@example.org")
    page.fill("textarea[name=topics]", "protein folding")
    page.check("input[name=frequency][value=weekly]")
    page.click("button:has-text('Preview')")

    assert preview_titles(page) == ["Protein Language Models Learn Folding Pathways"]
    assert page.locator("input[name=email]").input_value() == "ada@example.org"
    assert page.locator("textarea[name=topics]").input_value() == "protein folding"
    assert page.locator("input[name=frequency][value=weekly]").is_checked()
    shoot(page, "11-home-with-preview-no-javascript")

    page.click("button:has-text('Subscribe')")  # what was kept signs up as typed
    assert page.locator("h1").inner_text() == "Check your inbox"
    subscriber = Subscriber.objects.get()
    assert (subscriber.email, subscriber.topics, subscriber.frequency) == (
        "ada@example.org",
        "protein folding",
        "weekly",
    )
    context.close()
