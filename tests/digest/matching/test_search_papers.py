"""The search_papers command: the digest's ranking for any query, as JSON or a list."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from digest.matching import (
    select_papers,
)
from tests.digest.matching.matching_records import (
    NOW,
    background,
    make_paper,
    make_subscriber,
    titles,
)

pytestmark = pytest.mark.django_db


# --- the search_papers command -------------------------------------------------------------------


def test_search_papers_command_prints_json_best_first():
    background()
    make_paper("Speculative decoding for LLM inference", upvotes=100)
    make_paper("Batch inference tricks", "Speculative decoding is one of them.")
    out = StringIO()
    call_command("search_papers", "speculative decoding", "--limit", "1", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [row["title"] for row in rows] == ["Speculative decoding for LLM inference"]
    assert set(rows[0]) == {"id", "title", "arxiv_id", "url", "score", "why"}
    assert rows[0]["why"].startswith('Matches your topic "speculative decoding"')


def test_search_papers_command_ranks_like_the_digest():
    background()
    for i in range(3):
        make_paper(f"Speculative decoding variant {i}", upvotes=10 * i)
    subscriber = make_subscriber("speculative decoding")
    out = StringIO()
    call_command("search_papers", "speculative decoding", "--json", stdout=out)
    digest = select_papers([subscriber], now=NOW)[subscriber.id]
    assert [row["title"] for row in json.loads(out.getvalue())] == titles(digest)


def test_search_papers_command_prints_a_readable_list():
    background()
    make_paper("Speculative decoding for LLM inference")
    out = StringIO()
    call_command("search_papers", "speculative decoding", stdout=out)
    assert "  1. " in out.getvalue()
    assert "Speculative decoding for LLM inference" in out.getvalue()
    assert 'Matches your topic "speculative decoding" in the title' in out.getvalue()


def test_search_papers_command_says_when_nothing_is_relevant():
    out = StringIO()
    call_command("search_papers", "quantum error correction", stdout=out)
    assert "Nothing relevant." in out.getvalue()
