"""The title similarity the merge page shows, on arbitrary unicode titles."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.desk.merge_preview import comparable_title, title_similarity

titles = st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(titles, titles)
def test_similarity_is_a_fraction_the_same_in_either_order(first, second):
    similarity = title_similarity(first, second)

    assert 0.0 <= similarity <= 1.0
    assert similarity == title_similarity(second, first)


@settings(max_examples=300, deadline=None)
@given(titles)
def test_a_title_is_wholly_like_its_own_spellings(title):
    assert title_similarity(title, title) == 1.0
    assert title_similarity(title, unicodedata.normalize("NFKC", title)) == 1.0
    assert title_similarity(title, f"  {title}!") == 1.0


@settings(max_examples=300, deadline=None)
@given(titles)
def test_comparable_title_is_settled_after_one_pass(title):
    once = comparable_title(title)

    assert comparable_title(once) == once
    assert once == once.strip() and "  " not in once


def test_different_papers_on_one_topic_score_below_duplicates():
    specdec = "SpecDec++: Boosting Speculative Decoding via Adaptive Candidate Lengths"
    spectr = "SpecTr: Fast Speculative Decoding via Optimal Transport"
    grokfast = "Grokfast: Accelerated Grokking by Amplifying Slow Gradients"

    assert round(title_similarity(specdec, spectr), 2) == 0.66
    assert title_similarity("Mixture of Experts", "Mixture-of-Experts!") == 1.0
    assert title_similarity(grokfast, grokfast + " (v2)") > 0.95
