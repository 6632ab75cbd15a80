"""At 390 px (a phone) nothing scrolls sideways, the preview of the home page shows in the
first screen, the preference labels fit, and the admin fits. Screenshots go to screenshots/."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from digest.models import Paper
from digest.web.home import forget_home_page
from subscriptions import links
from subscriptions.models import Subscriber
from tests.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE)
    yield context.new_page()
    context.close()


@pytest.fixture
def papers(transactional_db) -> None:
    forget_home_page()
    now = timezone.now()
    for n in range(12):
        Paper.objects.create(
            title=f"Scaling Sparse Mixture-of-Experts Without Tears, part {n}",
            title_key=f"paper-{n}",
            upvotes=300 - n,
            first_seen=now - timedelta(hours=n),
            last_seen=now,
            authors=["Ada Lovelace", "Charles Babbage"],
            abstract="We study how sparse mixture of experts models scale with data and compute.",
            arxiv_id=f"2611.{n:05d}",
        )


def shoot(page, name: str) -> None:
    """The whole page, and the first screen a reader sees."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-first-screen.png"))


def assert_no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_home_preview_is_in_the_first_screen(phone, live_server, papers):
    phone.goto(live_server.url + "/")
    top = phone.eval_on_selector(
        "#preview", "element => element.getBoundingClientRect().top + window.scrollY"
    )
    assert top < PHONE["height"] - 100  # the box and its first line show without scrolling
    phone.screenshot(path=str(SCREENSHOTS / "50-home-390-first-screen.png"))

    phone.fill("textarea[name=topics]", "mixture of experts")
    expect(phone.locator("#preview ol.papers li").first).to_be_visible(timeout=10_000)
    shoot(phone, "50-home-preview-390")
    assert_no_sideways_scroll(phone)


def test_preference_labels_fit_on_a_phone(phone, live_server, transactional_db):
    reader = Subscriber.objects.create(
        email="a.rather.long.address.for.a.phone@example.org",
        topics="protein folding",
        frequency=Subscriber.Frequency.WEEKLY,
        status=Subscriber.Status.ACTIVE,
    )
    phone.goto(live_server.url + urlsplit(links.preferences_url(reader)).path)
    shoot(phone, "51-preferences-390")

    assert_no_sideways_scroll(phone)
    # a label is cut when it overflows its box or breaks over two lines beside its neighbour
    labels = phone.locator("#preferences .field > label")
    assert labels.count() >= 5
    cut = phone.eval_on_selector_all(
        "#preferences .field > label",
        """labels => labels.filter(label => label.scrollWidth > label.clientWidth + 1
            || label.getBoundingClientRect().height
               > 1.5 * parseFloat(getComputedStyle(label).lineHeight)
        ).map(label => label.textContent)""",
    )
    assert cut == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/digest/paper/",
        "/admin/subscriptions/subscriber/",
        "/admin/digest/paper/{paper}/change/",
    ],
)
def test_admin_fits_a_phone(phone, live_server, papers, django_user_model, path):
    django_user_model.objects.create_superuser("editor", "editor@example.org", "a-long-passphrase")
    Subscriber.objects.create(email="ada@example.org", topics="mixture of experts\ndiffusion")
    phone.goto(live_server.url + "/admin/login/")
    phone.fill("input[name=username]", "editor")
    phone.fill("input[name=password]", "a-long-passphrase")
    phone.click("input[type=submit]")
    phone.goto(live_server.url + path.format(paper=Paper.objects.first().pk))
    shoot(phone, "52-admin-" + path.strip("/").replace("/", "-").replace("{paper}", "n") + "-390")

    assert_no_sideways_scroll(phone)
