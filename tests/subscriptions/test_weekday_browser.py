"""A daily reader is not asked for a weekday: the "Weekly on" field shows only while Weekly is
chosen, on the sign-up form and the preferences page, with JavaScript off as well as on."""

from urllib.parse import urlsplit

import pytest

from subscriptions import links
from subscriptions.models import Subscriber
from tests.subscriptions.test_browser import SIZES

pytestmark = pytest.mark.browser


@pytest.fixture(params=[True, False], ids=["script", "no-script"])
def page(request, browser):
    context = browser.new_context(viewport=SIZES["phone"], java_script_enabled=request.param)
    yield context.new_page()
    context.close()


def test_sign_up_form_shows_the_weekday_only_for_weekly(page, live_server, transactional_db):
    page.goto(live_server.url + "/subscribe/")
    weekday = page.locator("select[name=weekday]")

    assert weekday.is_hidden()  # Daily is the default
    page.check("input[name=frequency][value=weekly]")
    assert weekday.is_visible()
    page.check("input[name=frequency][value=daily]")
    assert weekday.is_hidden()


@pytest.mark.parametrize("frequency", ["daily", "weekly"])
def test_preferences_show_the_weekday_only_to_a_weekly_reader(
    page, live_server, transactional_db, frequency
):
    reader = Subscriber.objects.create(
        email="ada@example.org",
        topics="protein folding",
        frequency=frequency,
        status=Subscriber.Status.ACTIVE,
    )
    page.goto(live_server.url + urlsplit(links.preferences_url(reader)).path)

    assert page.locator("select[name=weekday]").is_visible() == (frequency == "weekly")
    assert page.locator("select[name=send_hour]").is_visible()
