"""The leave page in a real browser: its three choices fit a phone; screenshots 45-… go to
screenshots/."""

import pytest
from django.utils import timezone

from subscriptions import links
from subscriptions.models import Subscriber
from tests.conftest import SCREENSHOTS
from tests.subscriptions.test_browser import SIZES

pytestmark = pytest.mark.browser


def reader(email: str) -> Subscriber:
    return Subscriber.objects.create(
        email=email, topics="mixture of experts", status=Subscriber.Status.ACTIVE,
        time_zone="Europe/Paris", send_hour=7, confirmed_at=timezone.now(),
    )  # fmt: skip


def leave_url(live_server, subscriber: Subscriber) -> str:
    return live_server.url + links.unsubscribe_url(subscriber).removeprefix("http://localhost:8000")


@pytest.mark.parametrize("size", SIZES)
def test_the_leave_page_choices_fit_and_work(browser, live_server, transactional_db, size):
    context = browser.new_context(viewport=SIZES[size])
    page = context.new_page()
    SCREENSHOTS.mkdir(exist_ok=True)

    def shot(name: str) -> None:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, size, overflow)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)

    weekly = reader(f"weekly-{size}@example.org")
    page.goto(leave_url(live_server, weekly))
    shot("45-leave")
    page.select_option("select[name=weekday]", "4")
    page.click("button[value=weekly]")
    assert page.locator("h1").inner_text() == "Weekly from now on"
    shot("46-leave-weekly")

    paused = reader(f"paused-{size}@example.org")
    page.goto(leave_url(live_server, paused))
    page.click("button[value=pause]")
    assert page.locator("h1").inner_text() == "Paused for a month"
    shot("47-leave-paused")

    leaving = reader(f"leaving-{size}@example.org")
    page.goto(leave_url(live_server, leaving))
    page.click("button[value=unsubscribe]")
    assert page.locator("h1").inner_text() == "You're unsubscribed"
    shot("48-unsubscribed")
    context.close()

    weekly.refresh_from_db(), paused.refresh_from_db(), leaving.refresh_from_db()
    assert (weekly.frequency, weekly.weekday) == ("weekly", 4)
    assert paused.status == Subscriber.Status.PAUSED and paused.paused_until is not None
    assert leaving.status == Subscriber.Status.UNSUBSCRIBED
