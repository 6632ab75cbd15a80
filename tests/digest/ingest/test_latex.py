"""digest.ingest.latex and the |readable_latex filters: LaTeX in titles and abstracts is shown
readable in pages and emails, and kept as it came in the database."""

from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.composing import compose_digest
from digest.ingest.latex import readable_latex, readable_latex_html
from digest.matching import Match
from digest.models import Paper
from subscriptions.models import Subscriber
from tests.unicode_text import any_text

TITLE = r"$\alpha$-Divergence Bounds for $x^{2}$ Models with $\ell_1$~Penalties"
ABSTRACT = r"We bound the $\alpha$-divergence by $O(n^2)$, at 50% of the cost & time."


@pytest.mark.parametrize(
    ("latex", "readable"),
    [
        (r"$\alpha$", "α"),
        ("x^{2}", "x²"),
        (r"$x^2 + y_{i}$", "x² + yᵢ"),
        ("Fast~Attention", "Fast Attention"),
        (r"\textbf{BERT} and {GPT}", "BERT and GPT"),
        (r"$\mathcal{O}(n \log n)$", "𝒪(n log n)"),
        (r"Schr\"odinger", "Schrödinger"),
        ("50% faster & cheaper", "50% faster & cheaper"),
        (r"costs $5 in 50% of cases {x}", "costs $5 in 50% of cases x"),
        ("snake_case names", "snake_case names"),
    ],
)
def test_simple_latex_reads_as_unicode_and_prose_is_left_alone(latex, readable):
    assert readable_latex(latex) == readable


@settings(deadline=None)  # a 100,000-word title takes pylatexenc a second or two
@given(any_text)
def test_any_unicode_is_returned_as_text_without_raising(text):
    result = readable_latex(text)

    assert isinstance(result, str)
    if not set("\\$^_~{}") & set(text):
        assert result == text


@settings(deadline=None)
@given(st.sampled_from(["alpha", "beta", "gamma", "lambda", "sigma", "omega"]), any_text)
def test_a_greek_letter_in_math_never_shows_its_dollars_or_backslash(letter, prose):
    prose = prose.replace("$", "").replace("\\", "")

    command = "\\" + letter
    result = readable_latex(prose + " $" + command + "$")

    assert "$" not in result and command not in result


def test_html_excerpts_keep_their_marks_and_escaping():
    html = r'A &amp; $\alpha$ &lt;b&gt; <mark style="color:red">beta</mark> x^{2}'

    assert readable_latex_html(html) == 'A &amp; α &lt;b&gt; <mark style="color:red">beta</mark> x²'


@pytest.fixture
def latex_paper(db) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=TITLE,
        title_key=TITLE.lower(),
        abstract=ABSTRACT,
        first_seen=now - timedelta(hours=1),
        last_seen=now,
    )


def test_the_digest_email_shows_readable_titles_and_abstracts(latex_paper):
    reader = Subscriber.objects.create(email="r@example.com", status="active", topics="bounds")
    match = Match(
        paper_id=latex_paper.pk, score=1.0, pinned=False, topic="bounds",
        matched_terms=("bounds",), why="Matches your topic",
    )  # fmt: skip
    message = compose_digest(reader, [match], period=date(2026, 3, 2))

    email = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()

    readable = "α-Divergence Bounds for x² Models with ℓ₁ Penalties"
    assert email["Subject"].strip() == f"1 new paper for you: {readable}"
    assert readable in text and "by O(n²), at 50% of the cost & time." in text
    assert (
        readable in html
        and "We bound the α-divergence by O(n²), at 50% of the cost &amp; time." in html
    )
    assert "$" not in text and "$" not in html
    latex_paper.refresh_from_db()
    assert (latex_paper.title, latex_paper.abstract) == (TITLE, ABSTRACT)


def test_the_paper_page_shows_readable_latex(client, latex_paper):
    page = client.get(f"/papers/{latex_paper.pk}/").content.decode()

    assert "<h1>α-Divergence Bounds for x² Models with ℓ₁ Penalties</h1>" in page
    assert "by O(n²), at 50% of the cost &amp; time." in page
