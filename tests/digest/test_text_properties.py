"""Never raise on text: every entry point of matching and composing that reads ingested titles
and abstracts or reader-typed topics, fed arbitrary unicode (hypothesis).

Text comes from every unicode category but surrogates (which no decoded input can hold), mixed
with the shapes real listings bring: parentheses with no word in them, CJK, right-to-left
scripts, emoji, LaTeX, control characters, empty strings and very long abstracts. Example
counts are explicit on each property; `deadline=None` because the first examples warm caches.
"""

from datetime import date
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digest.delivery.composing import compose_digest, cut_at_sentence, highlight
from digest.matching import (
    Interest,
    Match,
    PaperIndex,
    analyze,
    explain,
    find_acronyms,
    parse_topic_lines,
    rank,
    stem,
    to_matches,
    topic_stems,
)
from digest.models import Paper
from subscriptions.models import Subscriber
from subscriptions.topics import split_topics

PERIOD = date(2026, 3, 2)
LONG = 100_000

# Pieces real listings and readers produce, joined with arbitrary text between them.
PIECES = [
    "(%)",
    "($)",
    "(+)",
    "(…)",
    "( )",
    "()",
    "((",
    "))",
    "(MoE)",
    "(LLMs)",
    "(One-shot NAS)",
    "Mixture-of-Experts",
    "mixture of experts",
    "Large Language Models (LLMs)",
    "MoE (mixture of experts)",
    "$\\mathcal{O}(n \\log n)$",
    "\\textbf{bold}",
    "$x^2$",
    "深度学习",
    "大規模言語モデル (LLM)",
    "التعلم العميق",
    "למידה עמוקה",
    "\u200f\u202e",
    "🚀🤖",
    "👩🏽‍🔬",
    "\x00",
    "\x07",
    "\r\n",
    "\t",
    "\u2028",
    "\ufeff",
    "-",
    "--",
    " - ",
    "e.g.",
    "U.S.A.",
    "_",
    "diffusion models",
    "survey",
    "",
]
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]))
listing_text = st.lists(st.one_of(st.sampled_from(PIECES), any_text), max_size=12).map(" ".join)
text = st.one_of(any_text, listing_text)
short_text = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40), listing_text
)
topic_line = st.one_of(short_text, short_text.map(lambda line: "-" + line))
topic_lines = st.lists(topic_line, max_size=5)


def long_abstracts() -> list[str]:
    """100,000-character abstracts of the shapes that could be slow or odd."""
    words = "sparse mixture of experts routing (MoE) tokens (%) 深度学习 🚀 $x^2$ "
    return [
        (words * (LONG // len(words) + 1))[:LONG],
        "a" * LONG,  # one word
        "深" * LONG,  # one word in a script without spaces
        "(" * LONG,
        "(%) " * (LONG // 4),
        "(A) " * (LONG // 4),
        ("Mixture of Experts (MoE) " * (LONG // 25 + 1))[:LONG],
        "\x00" * LONG,
    ]


# --- words ---------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(text)
def test_analyze_never_raises_and_every_token_is_a_word_of_the_text(value):
    tokens = analyze(value)

    for word_stem, start, end, segment in tokens:
        assert word_stem and isinstance(word_stem, str)
        assert 0 <= start < end <= len(value)
        assert value[start:end].isalnum()
        assert segment >= 0
    assert [t[1] for t in tokens] == sorted(t[1] for t in tokens)


@settings(max_examples=500, deadline=None)
@given(text)
def test_stem_never_raises_and_gives_text(value):
    assert isinstance(stem(value), str)
    for token in analyze(value):
        assert isinstance(stem(value[token[1] : token[2]]), str)


@settings(max_examples=400, deadline=None)
@given(topic_lines)
def test_topic_lines_parse_into_topics_and_exclusions_with_words(lines):
    topics, exclusions = parse_topic_lines(lines)

    assert len(topics) + len(exclusions) <= len(split_topics("\n".join(lines)))
    for line in topics + exclusions:
        assert topic_stems(line)  # a line with no word is dropped, not kept empty


@settings(max_examples=500, deadline=None)
@given(text)
@example("(%)")
@example("( )")
@example("Mixture-of-Experts (MoE) and (…) and ($) and (+)")
def test_find_acronyms_never_raises(value):
    acronyms = find_acronyms(value)

    for acronym, long_form in acronyms.items():
        assert isinstance(acronym, str) and acronym
        assert len(long_form) > 1 and all(isinstance(s, str) and s for s in long_form)


def test_long_abstracts_are_read_whole():
    for abstract in long_abstracts():
        analyze(abstract)
        find_acronyms(abstract)
        cut_at_sentence(abstract)
        topic_stems(abstract[:2000])


# --- the paper index, ranking and explanations ---------------------------------------------------


papers_strategy = st.lists(st.tuples(short_text, text), max_size=8)
interests_strategy = st.lists(
    st.tuples(topic_lines, st.integers(min_value=0, max_value=12)), max_size=6
)


def interests_from(readers: list[tuple[list[str], int]]) -> list[Interest]:
    interests = []
    for lines, limit in readers:
        topics, exclusions = parse_topic_lines(lines)
        interests.append(Interest(topics, exclusions, limit))
    return interests


def rank_all(index: PaperIndex, interests: list[Interest], *, sent=((), ())):
    n = len(index.titles)
    return rank(
        index,
        interests,
        upvotes=list(range(n)),
        seen_counts=[1] * n,
        pinned=[i % 3 == 0 for i in range(n)],
        first_seen=[0.0] * n,
        already_sent=sent,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy)
def test_the_paper_index_builds_from_any_titles_and_abstracts(papers):
    index = PaperIndex.build([t for t, _ in papers], [a for _, a in papers])

    assert len(index.titles) == len(papers)
    for paper in range(len(papers)):
        for topic in ["mixture of experts", papers[paper][0][:40], "(%)", ""]:
            terms, in_title = explain(index, paper, topic)
            assert all(isinstance(term, str) for term in terms) and isinstance(in_title, bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy, interests_strategy)
def test_rank_and_its_explanations_never_raise_for_any_readers_and_papers(papers, readers):
    index = PaperIndex.build([t for t, _ in papers], [a for _, a in papers])
    interests = interests_from(readers)

    picks = rank_all(index, interests)
    matches = to_matches(
        index, picks, [1000 + i for i in range(len(papers))], [False] * len(papers)
    )

    assert len(picks.counts) == len(interests) == len(matches)
    assert int(np.sum(picks.counts)) == len(picks.papers)
    for interest, chosen in zip(interests, matches, strict=True):
        assert len(chosen) <= max(interest.limit, 0)
        assert len({m.paper_id for m in chosen}) == len(chosen)  # no paper twice to one reader
        if not interest.topics:
            assert chosen == []  # a reader whose every line is an exclusion gets nothing
        for match in chosen:
            assert match.topic in interest.topics
            assert isinstance(match.why, str) and match.why
            assert all(isinstance(term, str) for term in match.matched_terms)


NOBODY = "Ψζξ ωφχ ϡϟϛ"  # words no generated topic is allowed to share


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy, interests_strategy)
def test_a_paper_that_matches_nobody_is_picked_for_nobody(papers, readers):
    nobody_stems = set(topic_stems(NOBODY))
    readers = [
        ([line for line in lines if not nobody_stems & set(topic_stems(line))], limit)
        for lines, limit in readers
    ]
    papers = [*papers, (NOBODY, NOBODY + ". " + NOBODY)]
    index = PaperIndex.build([t for t, _ in papers], [a for _, a in papers])

    picks = rank_all(index, interests_from(readers))

    assert len(papers) - 1 not in picks.papers.tolist()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy, st.lists(topic_lines, min_size=1, max_size=4))
def test_readers_with_only_exclusions_or_no_matching_topic_get_nothing(papers, lines):
    index = PaperIndex.build([t for t, _ in papers], [a for _, a in papers])
    only_exclusions = [
        Interest([], [line.lstrip("-") for line in reader if line.strip("- ")], 10)
        for reader in lines
    ]
    nothing_matches = [Interest(["zqxjv wvkpq"], [], 10) for _ in lines]

    picks = rank_all(index, only_exclusions + nothing_matches)
    matches = to_matches(index, picks, list(range(len(papers))), [False] * len(papers))

    assert picks.counts.tolist() == [0] * (2 * len(lines))
    assert matches == [[] for _ in range(2 * len(lines))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_strategy, interests_strategy)
def test_papers_already_sent_are_never_picked_again(papers, readers):
    index = PaperIndex.build([t for t, _ in papers], [a for _, a in papers])
    interests = interests_from(readers)
    sent = [(r, p) for r in range(len(interests)) for p in range(len(papers)) if (r + p) % 2]

    picks = rank_all(index, interests, sent=tuple(zip(*sent, strict=True)) or ((), ()))

    owners = np.repeat(np.arange(len(interests)), picks.counts)
    picked = set(zip(owners.tolist(), picks.papers.tolist(), strict=True))
    assert not picked & set(sent)


def test_long_abstracts_index_rank_and_explain():
    abstracts = long_abstracts()
    index = PaperIndex.build([f"Paper {i} (%)" for i in range(len(abstracts))], abstracts)
    interests = [
        Interest(["mixture of experts", "MoE"], ["survey"], 10),
        Interest(["深度学习"], [], 10),
        Interest([], ["mixture of experts"], 10),
    ]

    picks = rank_all(index, interests)
    matches = to_matches(index, picks, list(range(len(abstracts))), [False] * len(abstracts))

    assert matches[0] and matches[2] == []
    for paper in range(len(abstracts)):
        explain(index, paper, "mixture of experts")


# --- composing -----------------------------------------------------------------------------------


def reader(topics: str) -> Subscriber:
    return Subscriber(pk=1, email="reader@example.com", topics=topics, send_hour=7)


def parse(message) -> object:
    return message_from_bytes(message.message().as_bytes(), policy=policy.default)


def assert_headers_intact(message, parsed) -> None:
    assert parsed["To"] == "reader@example.com"
    assert parsed["Subject"] == message.subject
    assert parsed["Message-ID"] == message.extra_headers["Message-ID"]
    assert parsedate_to_datetime(parsed["Date"]).tzinfo is not None
    html = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html is not None and text_part is not None
    html.get_content(), text_part.get_content()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(short_text, text, st.lists(short_text, max_size=8)), max_size=6),
    topic_lines,
)
def test_a_digest_of_any_papers_and_topics_composes_and_parses_back_intact(papers, lines):
    rows = [
        Paper(pk=i + 1, title=title, abstract=abstract, authors=authors, upvotes=i)
        for i, (title, abstract, authors) in enumerate(papers)
    ]
    index = PaperIndex.build([p.title for p in rows], [p.abstract for p in rows])
    topics, exclusions = parse_topic_lines(lines)
    picks = rank_all(index, [Interest(topics, exclusions, 10)])
    [matches] = to_matches(index, picks, [p.pk for p in rows], [False] * len(rows))
    # Whatever ranking picked, and every paper with a reason made of the reader's own text.
    matches += [
        Match(p.pk, 0.5, False, (lines or [""])[0][:500], tuple(lines[:3]), p.title[:500])
        for p in rows
    ]

    message = compose_digest(
        reader("\n".join(lines)),
        matches,
        period=PERIOD,
        papers={p.pk: p for p in rows},
        message_id="<digest.1.20260302@example.com>",
    )

    assert_headers_intact(message, parse(message))


def test_a_long_subject_with_non_ascii_parses_back_without_a_leading_space():
    # Found by the property above: "1 new paper for you: 0000\x80\x80\x80\x80\x80𐀀𐀀".
    rows = [Paper(pk=1, title="Über " + "x" * 40 + " — 深度学习 🚀", abstract="")]
    matches = [Match(1, 1.0, False, "x", ("x",), "")]

    message = compose_digest(reader("x"), matches, period=PERIOD, papers={1: rows[0]})
    parsed = parse(message)

    assert parsed["Subject"] == message.subject == f"1 new paper for you: {rows[0].title}"
    assert_headers_intact(message, parsed)


def test_a_digest_of_long_abstracts_composes_and_parses_back_intact():
    abstracts = long_abstracts()
    rows = [Paper(pk=i + 1, title=f"Paper {i} (%) 🚀", abstract=a) for i, a in enumerate(abstracts)]
    matches = [Match(p.pk, 1.0, False, "mixture of experts", ("mixture", "MoE"), "") for p in rows]

    message = compose_digest(
        reader("mixture of experts"),
        matches,
        period=PERIOD,
        papers={p.pk: p for p in rows},
        message_id="<digest.2.20260302@example.com>",
    )

    assert_headers_intact(message, parse(message))


@settings(max_examples=300, deadline=None)
@given(text, st.lists(short_text, max_size=6))
def test_highlighting_any_words_in_any_text_never_raises(value, terms):
    from django.utils.html import escape

    assert isinstance(highlight(escape(value), terms), str)
