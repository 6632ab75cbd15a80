"""A field the server marked invalid stops looking invalid once the reader corrects it."""

import pytest

from tests.conftest import SCREENSHOTS
from tests.subscriptions.test_browser import SIZES

pytestmark = pytest.mark.browser
WARN_BORDER = "rgb(164, 34, 27)"  # --warn in base.html


def border_of(page, selector: str) -> str:
    return page.eval_on_selector(selector, "element => getComputedStyle(element).borderTopColor")


def test_the_email_field_stops_being_red_once_the_address_is_fixed(
    browser, live_server, transactional_db
):
    context = browser.new_context(viewport=SIZES["phone"])
    page = context.new_page()
    page.goto(live_server.url + "/subscribe/")
    page.fill("input[name=email]", "ada")
    page.fill("textarea[name=topics]", "protein folding")
    page.click("button:has-text('Subscribe') >> nth=-1")
    page.wait_for_selector("#id_email_error")
    assert border_of(page, "#id_email") == WARN_BORDER
    assert page.locator("#id_email_error").is_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "40-email-error-phone.png"))

    page.locator("#id_email").press("End")
    page.locator("#id_email").press_sequentially("@")  # "ada@": still no good
    assert page.get_attribute("#id_email", "aria-invalid") == "true"
    page.locator("#id_email").press_sequentially("example.org")

    assert page.input_value("#id_email") == "ada@example.org"
    assert page.get_attribute("#id_email", "aria-invalid") == "false"
    assert border_of(page, "#id_email") != WARN_BORDER
    assert page.locator("#id_email_error").is_hidden()
    page.screenshot(path=str(SCREENSHOTS / "41-email-fixed-phone.png"))
    page.locator("#id_email").fill("")  # emptied again: the error is back
    assert page.get_attribute("#id_email", "aria-invalid") == "true"
    assert page.locator("#id_email_error").is_visible()
    context.close()
