"""The time-zone select lists canonical zones only (no aliases such as Asia/Calcutta), keeps a
reader's stored alias, and, in a browser, puts the browser's own zone first."""

import re
from urllib.parse import urlsplit

import pytest

from subscriptions import links
from subscriptions.forms import PreferencesForm, SignUpForm
from subscriptions.models import Subscriber
from tests.subscriptions.test_browser import SIZES

ALIASES = ["Asia/Calcutta", "Europe/Kiev", "US/Eastern", "America/Buenos_Aires", "Asia/Saigon"]


def option_values(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', html)


def test_sign_up_lists_canonical_zones_and_no_aliases():
    values = option_values(str(SignUpForm()["time_zone"]))

    assert values[0] == "UTC"
    assert {"Asia/Kolkata", "Europe/Kyiv", "America/New_York", "Europe/Amsterdam"} <= set(values)
    assert not set(ALIASES) & set(values)
    assert len(values) == len(set(values)) < 450


@pytest.mark.parametrize("alias", ALIASES)
def test_a_reader_stored_with_an_alias_keeps_it(alias):
    reader = Subscriber(email="a@example.org", topics="x", time_zone=alias)
    html = str(PreferencesForm.for_subscriber(reader)["time_zone"])

    assert option_values(html)[0] == alias
    assert f'<option value="{alias}" selected>' in html
    data = {"topics": "x", "frequency": "daily", "weekday": "0", "send_hour": "7",
            "time_zone": alias, "papers_per_digest": "10"}  # fmt: skip
    form = PreferencesForm.for_subscriber(reader, data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["time_zone"] == alias


def test_an_alias_shows_only_for_the_reader_who_holds_it():
    reader = Subscriber(email="a@example.org", topics="x", time_zone="Europe/Paris")
    html = str(PreferencesForm.for_subscriber(reader)["time_zone"])

    assert option_values(html)[:2] == ["UTC", "Africa/Abidjan"]
    assert "Asia/Calcutta" not in html


def test_an_unknown_zone_is_refused():
    data = {"email": "a@example.org", "topics": "x", "frequency": "daily", "weekday": "0",
            "send_hour": "7", "time_zone": "Mars/Olympus_Mons"}  # fmt: skip
    form = SignUpForm(data)
    assert not form.is_valid()
    assert "time_zone" in form.errors


@pytest.mark.browser
@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Argentina/Buenos_Aires"])
def test_the_browser_zone_comes_first_and_is_chosen(browser, live_server, transactional_db, zone):
    context = browser.new_context(viewport=SIZES["phone"], timezone_id=zone)
    page = context.new_page()
    page.goto(live_server.url + "/subscribe/")
    # Chromium's ICU names some zones by their alias (America/Buenos_Aires): that one is added
    reported = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")

    assert page.locator("select[name=time_zone]").input_value() == reported
    assert page.locator("select[name=time_zone] option").first.get_attribute("value") == reported
    context.close()


@pytest.mark.browser
def test_the_preferences_page_keeps_a_stored_alias(browser, live_server, transactional_db):
    reader = Subscriber.objects.create(
        email="ada@example.org", topics="x", status=Subscriber.Status.ACTIVE,
        time_zone="Asia/Calcutta", send_hour=9,
    )  # fmt: skip
    context = browser.new_context(viewport=SIZES["phone"], timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(live_server.url + urlsplit(links.preferences_url(reader)).path)

    assert page.locator("select[name=time_zone]").input_value() == "Asia/Calcutta"
    page.click("button[value=save]")
    page.wait_for_load_state()
    reader.refresh_from_db()
    assert reader.time_zone == "Asia/Calcutta"
    context.close()
