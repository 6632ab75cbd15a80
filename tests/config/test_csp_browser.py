"""The pages pass their Content-Security-Policy in a real browser: Chromium reports no violation
(no `securitypolicyviolation` event, no console message) on the public pages and the admin."""

import pytest
from django_celery_beat.models import PeriodicTask

from digest.delivery.archive import archive_url
from digest.models import Paper
from tests.config.conftest import NOW
from tests.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""

INJECT_A_SCRIPT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.injected = 1;";
  document.body.append(script);
  return window.injected ?? null;
}"""


def violations_on(page, url: str, console: list[str]) -> list[str]:
    page.goto(url)
    page.wait_for_load_state("load")
    reported = page.evaluate("window.cspViolations")
    return reported + [text for text in console if "Content Security Policy" in text]


def test_home_page_and_admin_report_no_csp_violation(
    browser, live_server, settings, transactional_db, django_user_model, reader
):
    settings.SITE_URL = live_server.url
    Paper.objects.create(
        title="Diffusion Models Beat GANs",
        title_key="diffusion models beat gans",
        first_seen=NOW,
        last_seen=NOW,
    )
    django_user_model.objects.create_superuser("editor", "editor@example.org", "a-long-passphrase")
    context = browser.new_context(timezone_id="Asia/Tokyo")
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    assert violations_on(page, live_server.url + "/", console) == []
    assert page.locator("select[name=time_zone]").input_value() == "Asia/Tokyo"  # the script ran
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # the style applied
    assert page.evaluate(INJECT_A_SCRIPT) is None  # and an injected one is refused
    assert page.evaluate("window.cspViolations") == ["script-src-elem blocked inline"]
    console.clear()
    assert violations_on(page, archive_url(reader, NOW.date()), console) == []
    assert violations_on(page, live_server.url + "/admin/login/", console) == []

    page.fill("input[name=username]", "editor")
    page.fill("input[name=password]", "a-long-passphrase")
    page.click("input[type=submit]")
    task = PeriodicTask.objects.first()
    for path in [
        "/admin/",
        "/admin/digest/paper/",
        f"/admin/subscriptions/subscriber/{reader.pk}/preview/",
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
    ]:
        assert violations_on(page, live_server.url + path, console) == [], path
    assert page.locator(".field-crontab_translation").is_hidden()  # its inline script ran

    page.goto(live_server.url + "/admin/digest/paper/")
    page.locator("input.action-select").first.check()
    page.locator("input.action-select").nth(1).check()
    page.select_option("select[name=action]", "merge_duplicates")
    page.click("button[name=index]")
    assert page.locator("h1").inner_text() == "Merge these papers?"
    assert page.locator(".merge-warning").is_visible()
    assert page.evaluate("window.cspViolations") == []
    assert [text for text in console if "Content Security Policy" in text] == []
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-merge-confirmation.png"), full_page=True)
