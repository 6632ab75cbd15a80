"""A reader's whole journey in a real browser: sign up on the home page, confirm from the email,
change topics, unsubscribe. Screenshots at phone and desktop width go to screenshots/."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from digest.models import Paper
from subscriptions.models import Subscriber
from tests.conftest import SCREENSHOTS, read_outbox

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
pytestmark = pytest.mark.browser


def shoot(page, name: str) -> None:
    """Full-page screenshots of the current page at both widths."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for size_name, size in SIZES.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size_name}.png"), full_page=True)
    page.set_viewport_size(SIZES["desktop"])


def paperboy_link(outbox: Path, purpose: str) -> str:
    """The link for `purpose` in the newest email that has one."""
    message = [
        m for m in read_outbox(outbox) if f"/{purpose}/" in m.get_body(("plain",)).get_content()
    ][-1]
    text = message.get_body(("plain",)).get_content()
    return next(word for word in text.split() if f"/{purpose}/" in word)


def show_email(context, outbox: Path, name: str) -> None:
    """Screenshots of the newest email's HTML part, as a mail client would render it."""
    html = read_outbox(outbox)[-1].get_body(("html",)).get_content()
    page = context.new_page()
    page.set_content(html)
    shoot(page, name)
    page.close()


def test_reader_signs_up_confirms_changes_topics_and_unsubscribes(
    browser, live_server, settings, outbox, transactional_db
):
    settings.SITE_URL = live_server.url
    now = timezone.now()
    for n, (title, upvotes) in enumerate(
        [
            ("Scaling Sparse Mixture-of-Experts Without Tears", 312),
            ("Protein Language Models Learn Folding Pathways", 188),
            ("A Survey of Retrieval-Augmented Generation for Code", 97),
        ]
    ):
        Paper.objects.create(
            title=title, title_key=f"paper-{n}", upvotes=upvotes, first_seen=now, last_seen=now,
            authors=["Ada Lovelace", "Charles Babbage", "Grace Hopper", "Alan Turing"],
            abstract="We study how the thing scales with data, compute and parameters, and find "
            "simple laws that predict quality across three orders of magnitude.",
            arxiv_id=f"2611.0000{n}",
        )  # fmt: skip
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport=SIZES["desktop"])
    page = context.new_page()

    page.goto(live_server.url + "/")
    assert page.locator("h2#trending-title").inner_text() == "Trending today"
    assert page.locator("select[name=time_zone]").input_value() == "Asia/Tokyo"  # guessed by JS
    shoot(page, "01-home")

    page.fill("input[name=email]", "not-an-address")
    page.fill("textarea[name=topics]", "mixture of experts")
    page.click("button:has-text('Subscribe')")
    assert "Enter a valid email address." in page.content()
    shoot(page, "02-sign-up-error")
    assert not Subscriber.objects.exists()

    page.fill("input[name=email]", "reader@example.org")
    page.fill("textarea[name=topics]", "mixture of experts\nprotein folding\n-survey")
    page.select_option("select[name=send_hour]", "8")
    page.click("button:has-text('Subscribe')")
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert page.locator("strong.address").inner_text() == "reader@example.org"
    shoot(page, "03-check-inbox")
    show_email(context, outbox, "03b-confirmation-email")
    subscriber = Subscriber.objects.get()
    assert (subscriber.status, subscriber.time_zone, subscriber.send_hour) == (
        "pending",
        "Asia/Tokyo",
        8,
    )

    # Abuse: the same mailbox spelled differently, asking for other topics. The page answers as
    # for anyone; there is still one reader, one confirmation email, and the owner's topics.
    page.goto(live_server.url + "/")
    page.fill("input[name=email]", "Reader@EXAMPLE.ORG")
    page.fill("textarea[name=topics]", "cryptocurrency giveaways")
    page.click("button:has-text('Subscribe')")
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert Subscriber.objects.count() == 1
    assert len(read_outbox(outbox)) == 1
    assert Subscriber.objects.get().topic_lines == [
        "mixture of experts",
        "protein folding",
        "-survey",
    ]

    page.goto(paperboy_link(outbox, "confirm"))
    shoot(page, "04-confirm")
    page.click("button:has-text('Yes, start my digest')")
    assert page.locator("h1").inner_text() == "You're subscribed"
    shoot(page, "05-confirmed")
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE

    page.click("text=change them now")
    assert page.locator("h1").inner_text() == "Your preferences"
    page.fill("textarea[name=topics]", "diffusion models\n-survey")
    page.check("input[name=frequency][value=weekly]")
    page.select_option("select[name=weekday]", "4")
    page.click("button:has-text('Save preferences')")
    assert "Saved." in page.locator(".notice").inner_text()
    shoot(page, "06-preferences-saved")
    subscriber.refresh_from_db()
    assert subscriber.topic_lines == ["diffusion models", "-survey"]
    assert (subscriber.frequency, subscriber.weekday) == ("weekly", 4)

    page.click("a:has-text('Unsubscribe')")
    shoot(page, "07-unsubscribe")
    page.select_option("select[name=reason]", "too many emails")
    page.click("button:has-text('Unsubscribe')")
    assert page.locator("h1").inner_text() == "You're unsubscribed"
    shoot(page, "08-unsubscribed")
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribe_reason == "too many emails"

    page.click("text=Subscribe again")  # back to the preference page, which offers it
    assert page.locator("h1").inner_text() == "Your preferences"
    assert page.get_by_text("Stop or pause").count() == 0
    shoot(page, "08b-preferences-after-unsubscribing")
    page.click("button:has-text('Subscribe again')")
    assert "Check your inbox" in page.locator(".notice").inner_text()
    page.goto(paperboy_link(outbox, "confirm"))
    page.click("button:has-text('Yes, start my digest')")
    assert page.locator("h1").inner_text() == "You're subscribed"
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.consent_at >= subscriber.confirmed_at - timedelta(seconds=5)  # given again

    page.goto(live_server.url + "/confirm/not-a-real-token/")
    assert "This link doesn" in page.locator("h1").inner_text()
    shoot(page, "09-bad-link")
    context.close()
