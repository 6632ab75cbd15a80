"""Semantic similarity blended into the ranking, on the real shipped model's vectors."""

import numpy as np
import pytest

from digest.matching import Interest, PaperIndex, rank, semantic, to_matches

TITLES = [
    "A benchmark of math word problems for large language models",
    "Evaluating chain-of-thought in large language models",
    "A survey of math word problems for large language models",
    "Measuring the Hubble constant with Cepheids",
]
ABSTRACTS = [
    "We test whether large language models solve grade-school arithmetic problems step by step.",
    "We measure how well large language models think through logic puzzles.",
    "We survey how large language models solve grade-school arithmetic problems step by step.",
    "Cepheid variables give a distance ladder.",
]
TOPIC = "LLM reasoning benchmarks"


@pytest.fixture(scope="module")
def vectors():
    model = semantic.load_model(None, semantic.PINNED_MODEL_SHA256)
    papers = semantic.embed_texts(
        [semantic.paper_text(t, a) for t, a in zip(TITLES, ABSTRACTS, strict=True)], model=model
    )
    return papers, {TOPIC: semantic.embed_texts([TOPIC], model=model)[0]}


def ranked(interest, vectors=None, weight=0.3):
    index = PaperIndex.build(TITLES, ABSTRACTS)
    extra = {} if vectors is None else {"paper_vectors": vectors[0], "topic_vectors": vectors[1]}
    picks = rank(
        index,
        [interest],
        upvotes=[0] * 4,
        seen_counts=[1] * 4,
        pinned=[False] * 4,
        semantic_weight=weight,
        **extra,
    )
    return picks, to_matches(index, picks, [10, 11, 12, 13], [False] * 4)[0]


def test_papers_in_other_words_come_in_on_their_meaning_and_say_so(vectors):
    lexical, _ = ranked(Interest([TOPIC]))
    picks, matches = ranked(Interest([TOPIC]), vectors)

    assert not len(lexical.papers)
    assert {m.paper_id for m in matches} >= {10, 11}
    assert 13 not in {m.paper_id for m in matches}
    assert all(m.why.startswith(f'Close in meaning to your topic "{TOPIC}"') for m in matches)


def test_an_excluded_paper_is_never_picked_however_close_in_meaning(vectors):
    _, matches = ranked(Interest([TOPIC], exclusions=["survey"]), vectors, weight=5.0)

    assert matches and 12 not in {m.paper_id for m in matches}


def test_a_weight_of_zero_ranks_exactly_as_without_vectors(vectors):
    interest = Interest(["math word problems", TOPIC])
    without, _ = ranked(interest)
    zero, _ = ranked(interest, vectors, weight=0.0)

    for field in ("counts", "papers", "lines", "scores"):
        assert np.array_equal(getattr(without, field), getattr(zero, field))


def test_a_paper_not_yet_embedded_ranks_on_its_words_alone_beside_embedded_ones(vectors):
    papers, topic_vectors = vectors
    partly = papers.copy()
    partly[0] = 0  # its vector is still being made: a zero row
    _, on_meaning = ranked(Interest([TOPIC]), (partly, topic_vectors))
    _, with_words = ranked(Interest(["math word problems", TOPIC]), (partly, topic_vectors))

    assert 11 in {m.paper_id for m in on_meaning}  # embedded: in on its meaning
    assert 10 not in {m.paper_id for m in on_meaning}
    why = {m.paper_id: m.why for m in with_words}
    assert why[10].startswith('Matches your topic "math word problems"')
