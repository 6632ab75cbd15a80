"""matched_words says, for many (paper, topic) pairs at once, exactly what explain() says for
each: the same terms in the same order and the same "in the title"."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.matching import PaperIndex, explain
from digest.matching.matched_words import matched_words

# Few words, so that topics meet papers: repeated words, runs across punctuation, plurals,
# stopwords inside phrases and acronyms with their long forms.
WORDS = [
    "diffusion",
    "models",
    "model",
    "language",
    "large",
    "LLM",
    "LLMs",
    "mixture",
    "of",
    "experts",
    "MoE",
    "graph",
    "neural",
    "networks",
    "the",
    ",",
    ".",
    "(",
    ")",
]
sentence = st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join)
topic = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
DEFINED = [
    "Large Language Models (LLMs) meet diffusion models",
    "MoE (mixture of experts) for graph neural networks",
    "Mixture of Experts models",
]


def assert_same_as_explain(index: PaperIndex, pairs: list[tuple[int, str]]) -> np.ndarray:
    papers = np.asarray([paper for paper, _ in pairs], dtype=np.int64)
    words = matched_words(index, papers, [line for _, line in pairs])
    for i, (paper, line) in enumerate(pairs):
        if words.done[i]:
            assert (words.terms[i], bool(words.in_title[i])) == explain(index, paper, line)
    return words.done


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=5), st.lists(topic, max_size=8))
def test_matched_words_are_explain_s_words_for_any_papers_and_topics(papers, topics):
    titles = [t for t, _ in papers] + DEFINED[:1]
    abstracts = [a for _, a in papers] + DEFINED[1:2]
    index = PaperIndex.build(titles, abstracts)

    assert_same_as_explain(index, [(p, line) for p in range(len(titles)) for line in topics])


def test_pairs_no_acronym_touches_are_done_without_explain():
    index = PaperIndex.build(
        ["Diffusion models, diffusion model", *DEFINED],
        ["Graph neural networks. Neural graph networks of the models", "", "", ""],
    )
    pairs = [(0, "diffusion models"), (0, "neural graph"), (1, "LLM"), (2, "MoE"), (0, "MoE")]

    done = assert_same_as_explain(index, pairs)

    assert done.tolist() == [True, True, False, False, True]
