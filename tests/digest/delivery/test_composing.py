import re
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from digest.delivery import composing
from digest.delivery.composing import compose_digest, cut_at_sentence, highlight
from digest.matching import Match
from digest.models import Paper
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

PERIOD = date(2026, 3, 2)


def make_paper(title: str, abstract: str = "", **fields) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=now - timedelta(hours=1),
        last_seen=now,
        **fields,
    )


def make_subscriber(email: str = "reader@example.com", **fields) -> Subscriber:
    fields.setdefault("topics", "mixture of experts\nquantization")
    return Subscriber.objects.create(email=email, status=Subscriber.Status.ACTIVE, **fields)


def match(paper: Paper, *terms: str, why: str = "Matches your topic", pinned=False) -> Match:
    return Match(
        paper_id=paper.pk, score=1.0, pinned=pinned, topic="t", matched_terms=terms, why=why
    )


def parsed(message):
    return message_from_bytes(message.message().as_bytes(), policy=policy.default)


def html_of(message) -> str:
    return parsed(message).get_body(("html",)).get_content()


def text_of(message) -> str:
    return parsed(message).get_body(("plain",)).get_content()


def test_digest_is_multipart_alternative_with_text_and_html():
    paper = make_paper("Sparse Mixture of Experts", "We route tokens.")
    email = parsed(compose_digest(make_subscriber(), [match(paper)], period=PERIOD))

    assert email.get_content_type() == "multipart/alternative"
    assert "Sparse Mixture of Experts" in email.get_body(("plain",)).get_content()
    assert "Sparse Mixture of Experts" in email.get_body(("html",)).get_content()


def test_subject_counts_the_papers_and_names_the_top_one():
    first = make_paper("Experts All the Way Down")
    second = make_paper("Quantization for Everyone")
    email = parsed(compose_digest(make_subscriber(), [match(first), match(second)], period=PERIOD))

    assert email["Subject"].strip() == "2 new papers for you: Experts All the Way Down"


def test_title_with_markup_is_escaped_and_matched_words_highlighted():
    paper = make_paper(
        "<script>alert(1)</script> Routing",
        "A <b>mixture of experts</b> model. Tom & Jerry use it.",
    )
    message = compose_digest(
        make_subscriber(), [match(paper, "mixture of experts", "amp")], period=PERIOD
    )
    html = html_of(message)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Routing" in html
    assert "&lt;b&gt;<mark" in html and ">mixture of experts</mark>&lt;/b&gt;" in html
    assert "Tom &amp; Jerry" in html  # "amp" is a matched word, never a piece of an entity
    assert "<script>alert(1)</script> Routing" in text_of(message)


def test_highlight_marks_whole_words_case_insensitively():
    marked = highlight("Experts and expertsystem; EXPERTS.", ["experts"])

    assert marked.count("<mark") == 2
    assert "expertsystem" in marked and ">EXPERTS</mark>" in marked


def test_abstract_is_cut_at_a_sentence_boundary():
    sentences = [f"Sentence number {n} says something quite long about experts." for n in range(12)]
    excerpt = cut_at_sentence(" ".join(sentences), limit=200)

    assert excerpt.endswith("experts.")
    assert 100 < len(excerpt) <= 200
    assert excerpt.startswith("Sentence number 0")


def test_titles_link_to_the_papers_page_opened_as_the_readers(client, settings):
    settings.SITE_URL = "https://paperboy.example"
    on_arxiv = make_paper("On arXiv", arxiv_id="2401.00001", url="https://example.org/a")
    elsewhere = make_paper("Elsewhere", url="https://example.org/b")
    message = compose_digest(make_subscriber(), [match(on_arxiv), match(elsewhere)], period=PERIOD)
    html, text = html_of(message), text_of(message)

    for paper in (on_arxiv, elsewhere):
        found = re.search(rf'href="https://paperboy.example(/papers/{paper.pk}/for/[^"/]+/)"', html)
        assert found, paper.title
        assert f"https://paperboy.example{found.group(1)}" in text
        page = client.get(found.group(1)).content.decode()
        assert "More like this" in page and "Less like this" in page


def test_every_entry_of_the_text_part_has_its_two_rating_lines_under_its_title(settings):
    settings.SITE_URL = "https://paperboy.example"
    papers = [make_paper(f"Paper number {i}", "An abstract.") for i in range(3)]
    text = text_of(compose_digest(make_subscriber(), [match(p) for p in papers], period=PERIOD))

    entries = re.split(r"^\d+\. ", text, flags=re.MULTILINE)[1:]
    assert len(entries) == 3
    for paper, entry in zip(papers, entries, strict=True):
        assert entry.startswith(paper.title)
        lines = entry.splitlines()
        more = [line for line in lines if line.startswith("More like this: ")]
        less = [line for line in lines if line.startswith("Less like this: ")]
        assert len(more) == len(less) == 1
        assert re.fullmatch(
            rf"More like this: https://paperboy.example/papers/{paper.pk}/more/\S+/", more[0]
        )
        assert re.fullmatch(
            rf"Less like this: https://paperboy.example/papers/{paper.pk}/less/\S+/", less[0]
        )


def test_two_readers_of_the_same_entry_get_their_own_rating_links():
    paper = make_paper("Shared paper", "An abstract.")
    first = text_of(compose_digest(make_subscriber("a@example.com"), [match(paper)], period=PERIOD))
    second = text_of(
        compose_digest(make_subscriber("b@example.com"), [match(paper)], period=PERIOD)
    )

    def more_link(text: str) -> str:
        return re.search(r"^More like this: (\S+)$", text, flags=re.MULTILINE).group(1)

    assert more_link(first) != more_link(second)
    assert "placeholder" not in first + second


def test_each_paper_shows_authors_upvotes_and_why(settings):
    paper = make_paper("Experts", authors=["Ada Lovelace", "Alan Turing"], upvotes=42)
    why = 'Matches your topic "mixture of experts": experts'
    message = compose_digest(make_subscriber(), [match(paper, why=why)], period=PERIOD)

    for body in (html_of(message), text_of(message)):
        assert "Ada Lovelace, Alan Turing" in body
        assert "42 upvotes" in body
    assert "Why you got this:</strong> Matches your topic &quot;mixture of experts&quot;" in (
        html_of(message)
    )


def test_a_paper_nobody_upvoted_shows_no_upvote_count():
    paper = make_paper("Experts", authors=["Ada Lovelace"], upvotes=0)
    message = compose_digest(make_subscriber(), [match(paper)], period=PERIOD)

    for body in (html_of(message), text_of(message)):
        assert "Ada Lovelace" in body
        assert "upvote" not in body


def test_headers_offer_one_click_unsubscribe_list_id_and_mailto(settings):
    settings.LIST_UNSUBSCRIBE_MAILTO = "unsubscribe@example.com"
    settings.SITE_URL = "https://paperboy.example.org"
    paper = make_paper("Experts")
    email = parsed(
        compose_digest(
            make_subscriber(), [match(paper)], period=PERIOD, message_id="<digest.1.x@example>"
        )
    )

    one_click, mailto = (part.strip() for part in email["List-Unsubscribe"].split(","))
    assert one_click.startswith("<https://paperboy.example.org/unsubscribe/")
    assert one_click.endswith("/one-click/>")
    assert mailto == "<mailto:unsubscribe@example.com?subject=unsubscribe>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["List-Id"].strip() == "Paperboy digest <digest.paperboy.example.org>"
    assert email["Message-ID"].strip() == "<digest.1.x@example>"


def test_html_has_preheader_dark_mode_meta_and_footer_links():
    paper = make_paper("Experts Everywhere")
    subscriber = make_subscriber()
    html = html_of(compose_digest(subscriber, [match(paper)], period=PERIOD))

    assert '<meta name="color-scheme" content="light dark">' in html
    assert "display:none" in html and "Experts Everywhere." in html  # the preheader
    assert "View in browser" in html and "/digest/" in html
    assert "/preferences/" in html and "/unsubscribe/" in html
    assert f"subscribed to Paperboy with {subscriber.email}" in html


def test_pinned_paper_is_labelled_an_editors_pick():
    paper = make_paper("Pinned Experts", pinned=True)
    html = html_of(compose_digest(make_subscriber(), [match(paper, pinned=True)], period=PERIOD))

    assert "Editor&#x27;s pick" in html or "Editor's pick" in html


def test_paper_block_is_rendered_once_for_all_subscribers(monkeypatch):
    papers = [make_paper(f"Paper {n}", "One sentence. Two sentences.") for n in range(3)]
    calls = []
    original = composing._render_block
    monkeypatch.setattr(composing, "_blocks", {})
    monkeypatch.setattr(
        composing, "_render_block", lambda paper: calls.append(paper.pk) or original(paper)
    )
    for n in range(5):
        subscriber = make_subscriber(f"reader{n}@example.com")
        compose_digest(subscriber, [match(paper, "sentence") for paper in papers], period=PERIOD)

    assert sorted(calls) == sorted(paper.pk for paper in papers)


def test_readers_of_one_paper_each_get_their_own_reason_and_highlight():
    paper = make_paper("Experts", "Experts route tokens. Routing is learned.")
    first = compose_digest(
        make_subscriber("expert@example.com"),
        [match(paper, "Experts", why="Matches your topic experts")],
        period=PERIOD,
    )
    other = compose_digest(
        make_subscriber("router@example.com"),
        [match(paper, "Routing", why="Matches your topic routing")],
        period=PERIOD,
    )

    html = html_of(other)
    assert "Matches your topic routing" in html and "Matches your topic experts" not in html
    assert ">Routing</mark>" in html and ">Experts</mark>" not in html
    assert ">Experts</mark>" in html_of(first) and ">Routing</mark>" not in html_of(first)


def test_edited_paper_gets_a_fresh_block():
    paper = make_paper("Old Title")
    compose_digest(make_subscriber(), [match(paper)], period=PERIOD)
    paper.title = "New Title"
    paper.save()

    email = compose_digest(make_subscriber("other@example.com"), [match(paper)], period=PERIOD)
    assert "New Title" in html_of(email)


def test_preview_shows_what_the_reader_would_get_and_records_nothing():
    from digest.models import Delivery

    make_paper("Sparse Mixture of Experts", "We train a mixture of experts model.")
    reader = make_subscriber(topics="mixture of experts")

    preview = composing.preview_digest(reader)

    assert "Sparse Mixture of Experts" in html_of(preview)
    assert Delivery.objects.count() == 0


def test_preview_is_none_when_nothing_is_relevant():
    make_paper("Protein Folding", "We fold proteins.")
    assert composing.preview_digest(make_subscriber(topics="volcanology")) is None


def test_subject_with_a_long_title_stays_within_100_characters_with_the_ellipsis():
    title = "Towards " + "Very Long Titles About Sparse Mixture of Experts and Their Scaling " * 3
    email = parsed(compose_digest(make_subscriber(), [match(make_paper(title))], period=PERIOD))

    subject = str(email["Subject"]).strip()
    assert len(subject) <= 100
    assert subject.startswith("1 new paper for you: Towards Very Long Titles")
    assert subject.endswith("…")


def test_digest_date_header_has_a_real_offset_and_ids_use_the_site_domain(settings):
    settings.SITE_URL = "https://papers.example.com"
    paper = make_paper("Experts All the Way Down")
    email = parsed(compose_digest(make_subscriber(), [match(paper)], period=PERIOD))

    assert email["Date"].endswith("+0000")
    assert email["Message-ID"].endswith("@papers.example.com>")
