"""The composed digest is byte for byte what today's templates render for the reader, whatever
the papers, reasons and topics hold."""

from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from django.core import signing
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.emails import Email, standard_headers
from digest.delivery import composing
from digest.delivery.composing import compose_digest, digest_headers
from digest.matching import Match
from digest.models import Paper
from subscriptions.models import Subscriber
from tests.digest.delivery.template_reference import reference_digest
from tests.unicode_text import any_text

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def one_second():
    """Signed links (preferences, unsubscribe) carry the second they were made in: the two
    renderings compared must see the same second."""
    original = signing.TimestampSigner.timestamp
    signing.TimestampSigner.timestamp = lambda self: "1xa3Sa"
    yield
    signing.TimestampSigner.timestamp = original


def paper(pk: int, title: str, abstract: str, authors: list[str], upvotes: int) -> Paper:
    return Paper(
        pk=pk,
        title=title,
        abstract=abstract,
        authors=authors,
        author_count=len(authors),
        arxiv_id=f"2603.{pk:05d}" if pk % 2 else "",
        url=f"https://example.org/{pk}",
        upvotes=upvotes,
        first_seen=NOW,
        last_seen=NOW,
    )


def reader(pk: int, email: str, topics: str, **fields) -> Subscriber:
    return Subscriber(pk=pk, email=email, topics=topics, **fields)


def composed_parts(subscriber, matches, papers, period) -> tuple[str, str, str]:
    message = compose_digest(subscriber, matches, period=period, papers=papers)
    return message.subject, message.body, message.alternatives[0][0]


papers_strategy = st.lists(
    st.builds(
        paper,
        pk=st.integers(1, 40),
        title=any_text,
        abstract=any_text,
        authors=st.lists(any_text, max_size=8),
        upvotes=st.integers(0, 1000),
    ),
    max_size=5,
    unique_by=lambda p: p.pk,
)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    papers=papers_strategy,
    why=st.lists(any_text, min_size=5, max_size=5),
    terms=st.lists(st.lists(any_text, max_size=3), min_size=5, max_size=5),
    pinned=st.lists(st.booleans(), min_size=5, max_size=5),
    topics=any_text,
    weekly=st.booleans(),
    period=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
)
def test_composed_digest_is_what_the_templates_render(
    papers, why, terms, pinned, topics, weekly, period
):
    subscriber = reader(
        7,
        "reader@xn--bcherei-n2a.de",
        topics,
        frequency="weekly" if weekly else "daily",
        weekday=2,
        send_hour=6,
        time_zone="Europe/Berlin",
    )
    by_id = {p.pk: p for p in papers}
    matches = [
        Match(p.pk, 1.0, pinned[n], "topic", tuple(terms[n]), why[n]) for n, p in enumerate(papers)
    ]

    assert composed_parts(subscriber, matches, by_id, period) == reference_digest(
        subscriber, matches, period=period, papers=by_id
    )


def test_readers_sharing_papers_each_get_their_own_links_and_footer():
    shared = {
        n: paper(n, f"Paper {n} & <co>", "One. Two sentences here.", ["Ada"], n) for n in (1, 2)
    }
    period = date(2026, 3, 2)
    for pk, email in ((1, "ada@example.com"), (2, "grace@example.org"), (3, "alan@example.net")):
        subscriber = reader(pk, email, "experts\nrouting")
        matches = [Match(n, 1.0, n == 2, "t", ("Paper",), f'why {pk} "{n}"') for n in (2, 1)]
        composed = composed_parts(subscriber, matches, shared, period)

        assert composed == reference_digest(subscriber, matches, period=period, papers=shared)
        assert email in composed[2] and f"why {pk} &quot;2&quot;" in composed[2]


def test_a_paper_text_that_looks_like_a_slot_is_shown_as_written():
    tricky = paper(1, "\ue000abc:why&\ue001", "\ue000 excerpt_html&amp;\ue001 text.", [], 0)
    subscriber = reader(1, "ada@example.com", "x")
    matches = [Match(1, 1.0, False, "t", (), "why")]

    assert composed_parts(subscriber, matches, {1: tricky}, date(2026, 3, 2)) == (
        reference_digest(subscriber, matches, period=date(2026, 3, 2), papers={1: tricky})
    )


def test_latex_in_titles_and_excerpts_reads_as_the_templates_filters_show_it():
    papers = {
        1: paper(1, r"$\alpha$-divergence for x^{2}", r"We bound $\beta$ in x^{2}. More.", [], 0),
        2: paper(2, "Plain_title with ~ and $", r"No {LaTeX} here & <b>.", [], 0),
    }
    subscriber = reader(1, "ada@example.com", "divergence")
    matches = [
        Match(1, 1.0, False, "t", ("divergence", "bound"), "why"),
        Match(2, 1.0, True, "t", ("title",), "why"),
    ]
    composed = composed_parts(subscriber, matches, papers, date(2026, 3, 2))

    assert composed == reference_digest(subscriber, matches, period=date(2026, 3, 2), papers=papers)
    assert "α-divergence for x²" in composed[0] and "α-divergence for x²" in composed[2]
    assert "β" in composed[1] and "β" in composed[2]


def test_the_whole_email_is_byte_for_byte_the_templates_email():
    subscriber = reader(3, "ada@example.com", "mixture of experts")
    papers = {1: paper(1, "Sparse Experts", "We route. It works.", ["Ada", "Alan"], 12)}
    matches = [Match(1, 1.0, False, "t", ("experts",), 'Matches your topic "experts"')]
    period = date(2026, 3, 2)
    message_id = "<digest.1.2@example.com>"
    composed = compose_digest(
        subscriber, matches, period=period, papers=papers, message_id=message_id
    )
    subject, text, html = reference_digest(subscriber, matches, period=period, papers=papers)
    reference = Email(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers=standard_headers(
            {**digest_headers(subscriber), "Message-ID": message_id, "Date": "fixed"}
        ),
    )
    reference.attach_alternative(html, "text/html")
    composed.extra_headers["Date"] = "fixed"

    def as_bytes(message) -> bytes:
        mime = message.message()
        mime.set_boundary("boundary")
        return mime.as_bytes()

    assert as_bytes(composed) == as_bytes(reference)


def test_each_block_and_frame_is_rendered_once_for_all_readers(monkeypatch):
    calls = []
    render_block, parse = composing._render_block, composing.Slotted.parse
    monkeypatch.setattr(composing, "_blocks", {})
    monkeypatch.setattr(composing, "_frames", {})
    monkeypatch.setattr(
        composing, "_render_block", lambda p: calls.append(("block", p.pk)) or render_block(p)
    )
    monkeypatch.setattr(
        composing.Slotted, "parse", lambda text: calls.append("frame") or parse(text)
    )
    papers = {n: paper(n, f"Paper {n}", "One. Two.", [], 0) for n in (1, 2, 3)}
    for pk in range(1, 6):
        matches = [Match(n, 1.0, False, "t", (f"w{pk}",), f"why {pk}") for n in (1, 2, 3)]
        composed_parts(reader(pk, f"r{pk}@example.com", "t"), matches, papers, date(2026, 3, 2))

    assert sorted(c for c in calls if c != "frame") == [("block", 1), ("block", 2), ("block", 3)]
    assert calls.count("frame") == 3 * 2 + 3  # an HTML and a text entry per paper; 3 frames
