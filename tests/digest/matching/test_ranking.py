"""How people type interests, and which papers that brings first."""

import numpy as np
import pytest
from scipy import sparse

from digest.matching import (
    find_acronyms,
    keep_row_top,
    search_papers,
    select_papers,
    stem,
    topic_stems,
)
from tests.digest.matching.matching_records import (
    NOW,
    background,
    make_paper,
    make_subscriber,
    titles,
)

pytestmark = pytest.mark.django_db


# --- how people type interests -------------------------------------------------------------------


def test_stemmer_joins_plurals_and_word_forms():
    assert stem("Models") == stem("model")
    assert stem("policies") == stem("policy")
    assert stem("generation") == stem("generating") == stem("generated") == stem("generate")
    assert stem("embeddings") == stem("embedding") == stem("embedded") == stem("embed")
    assert stem("loss") == "loss"
    assert stem("robotics") == stem("robot")  # Porter's stemmer, as Lucene's English analyzer
    assert stem("NAS") == "nas"  # a short word (often an acronym) is kept whole


def test_acronym_definitions_are_recognised_in_their_common_shapes():
    def defines(text: str) -> dict[str, str]:
        return {acronym: " ".join(stems) for acronym, stems in find_acronyms(text).items()}

    def words(phrase: str) -> str:
        return " ".join(topic_stems(phrase))

    assert defines("Sparse Mixture-of-Experts (MoE) layers") == {"moe": words("mixture experts")}
    assert defines("Large Language Models (LLMs) write code") == {
        "llm": words("large language model")
    }
    assert defines("Reinforcement Learning from Human Feedback (RLHF) aligns") == {
        "rlhf": words("reinforcement learning human feedback")
    }
    assert defines("we adapt with Low-Rank Adaptation (LoRA).") == {
        "lora": words("low rank adaptation")
    }
    assert defines("MoE (mixture of experts) models") == {"moe": words("mixture experts")}
    assert defines("One-shot neural architecture search (One-shot NAS) trains once") == {
        "nas": words("neural architecture search")
    }
    assert defines("results (Table 2) and speed (CPU)") == {}


def test_case_and_plurals_do_not_matter():
    background()
    make_paper("Diffusion models beat GANs on image synthesis")
    assert titles(search_papers("DIFFUSION MODEL")) == [
        "Diffusion models beat GANs on image synthesis"
    ]


def test_words_with_accents_match_whole():
    background()
    make_paper("Schrödinger bridges for generative modelling")
    (match,) = search_papers("schrödinger bridge")
    assert match.matched_terms == ("Schrödinger bridges",)


def test_word_forms_match():
    background()
    make_paper("Generating code with retrieval")
    assert titles(search_papers("code generation")) == ["Generating code with retrieval"]


def test_hyphenated_topic_matches_spaced_words_and_the_reverse():
    background()
    make_paper("Sparse mixture-of-experts layers")
    make_paper("A mixture of experts for translation")
    assert set(titles(search_papers("mixture of experts"))) == {
        "Sparse mixture-of-experts layers",
        "A mixture of experts for translation",
    }
    assert set(titles(search_papers("Mixture-of-Experts"))) == {
        "Sparse mixture-of-experts layers",
        "A mixture of experts for translation",
    }


def test_words_in_order_outrank_the_same_words_apart():
    background()
    make_paper(
        "Learning to plan",
        "Reinforcement signals guide the learning of agents. Users give human feedback on traces.",
    )
    make_paper(
        "Aligning assistants",
        "We apply reinforcement learning from human feedback to align a chat assistant.",
    )
    ranked = search_papers("reinforcement learning from human feedback")
    assert titles(ranked)[0] == "Aligning assistants"
    # Though the other paper has a topic word in its title, which weighs four times.
    assert ranked[0].score > 1.2 * ranked[1].score


def test_acronym_topic_matches_a_paper_that_defines_it():
    background()
    make_paper(
        "Routing tokens to specialists",
        "A sparse Mixture-of-Experts (MoE) layer sends each token to two of its experts.",
    )
    make_paper("Mixing audio tracks", "We mix stems of songs with a learned mixer.")
    assert titles(search_papers("MoE")) == ["Routing tokens to specialists"]


def test_long_form_topic_matches_a_paper_that_only_says_the_acronym_after_defining_it():
    background()
    make_paper(
        "Scaling MoE training",
        "Reinforcement Learning from Human Feedback (RLHF) is costly. We make RLHF cheap for MoE.",
    )
    matches = search_papers("reinforcement learning from human feedback")
    assert titles(matches) == ["Scaling MoE training"]
    assert "RLHF" in matches[0].matched_terms


def test_acronym_alone_does_not_stand_for_a_long_form_the_paper_never_defines():
    background()
    make_paper("Faster MoE inference", "MoE layers are slow on phones; we cache the router.")
    assert search_papers("mixture of experts") == []


def test_plural_acronym_topic_matches_the_singular_and_its_definition():
    background()
    make_paper("Agents built on an LLM", "We chain calls to one LLM.")
    make_paper("Reasoning", "Large language models (LLMs) reason step by step.")
    assert set(titles(search_papers("LLMs"))) == {"Agents built on an LLM", "Reasoning"}


def test_exclusion_line_drops_papers_that_mention_it():
    background()
    make_paper("A survey of code generation with language models")
    make_paper("Code generation with test feedback")
    make_paper("Code generation surveyed", "We survey code generation benchmarks.")
    assert titles(search_papers("code generation\n-survey")) == [
        "Code generation with test feedback"
    ]


def test_multi_word_exclusion_needs_the_whole_phrase():
    background()
    make_paper("Code generation for large language models")
    make_paper("Code generation in a large codebase", "Language models write code for a model.")
    assert titles(search_papers("code generation; -large language models")) == [
        "Code generation in a large codebase"
    ]


def test_title_match_outranks_abstract_match():
    background()
    make_paper("Efficient attention kernels", "Graph transformers benefit from our kernels.")
    make_paper("Graph transformers", "We propose efficient kernels for attention layers.")
    assert titles(search_papers("graph transformers"))[0] == "Graph transformers"


def test_trending_breaks_a_tie_between_equally_relevant_papers():
    background()
    make_paper("Video diffusion models A", upvotes=3)
    make_paper("Video diffusion models B", upvotes=240, seen_count=3)
    assert titles(search_papers("video diffusion")) == [
        "Video diffusion models B",
        "Video diffusion models A",
    ]


def test_trending_does_not_beat_clearly_better_relevance():
    background()
    make_paper("Video diffusion models", upvotes=0)
    make_paper("Fast samplers", "Our sampler also speeds up video diffusion.", upvotes=500)
    assert titles(search_papers("video diffusion"))[0] == "Video diffusion models"


def test_nothing_above_the_relevance_threshold_selects_nothing():
    background()
    make_paper("Protein folding with language models")
    subscriber = make_subscriber("quantum error correction")
    assert search_papers("quantum error correction") == []
    assert select_papers([subscriber], now=NOW) == {subscriber.id: []}


def test_paper_sharing_only_a_topics_common_words_is_not_sent():
    make_paper("Spiking neural networks on neuromorphic chips", "Spikes carry the signal.")
    make_paper("Neural networks for weather forecasting", "Neural networks predict rain.")
    make_paper("Pruning neural networks", "Smaller models, same accuracy.")
    for subject in ("Graph transformers", "Protein folding", "Speech recognition"):
        make_paper(subject, "Nothing about the topic here.")
    assert titles(search_papers("spiking neural networks")) == [
        "Spiking neural networks on neuromorphic chips"
    ]


def test_paper_sharing_one_word_of_a_two_word_topic_is_not_sent():
    background()
    make_paper("Video diffusion models")
    make_paper("Diffusion samplers for images")
    make_paper("Diffusion policies for robots")
    make_paper("Video captioning for sports broadcasts")  # the rarer word, alone
    assert titles(search_papers("video diffusion")) == ["Video diffusion models"]


def make_expressivity_papers() -> None:
    """Three papers squarely on "expressive power of transformers", all in the language of
    circuit complexity and formal languages, and background on other subjects."""
    background()
    for subject in ("Log-precision", "Hard-attention", "Looped"):
        make_paper(
            f"{subject} transformers and their expressive power",
            "We bound the expressive power of transformers with circuit complexity: the formal "
            "languages they recognise lie in uniform threshold circuit classes.",
        )


def test_words_the_best_matches_share_lift_papers_that_use_them_too():
    make_expressivity_papers()
    # The same topic words, once each, in abstracts of the same length: without feedback a tie.
    circuits = make_paper(
        "Sequence models one",
        "Transformers have expressive power we characterise through circuit complexity classes.",
    )
    turbines = make_paper(
        "Sequence models two",
        "Transformers have expressive power we characterise through wind turbine forecasting.",
    )

    scores = {m.paper_id: m.score for m in search_papers("expressive power of transformers")}

    assert scores[circuits.pk] > scores[turbines.pk]


def test_feedback_never_brings_a_paper_without_the_topics_own_words():
    make_expressivity_papers()
    make_paper(
        "Threshold circuits for formal languages",
        "Uniform circuit complexity classes and the formal languages they recognise.",
    )

    ranked = titles(search_papers("expressive power of transformers"))

    assert len(ranked) == 3
    assert "Threshold circuits for formal languages" not in ranked


def test_keep_row_top_keeps_each_rows_largest_entries():
    matrix = sparse.csr_matrix(np.array([[0.1, 0.9, 0.0, 0.5], [3.0, 0.0, 0.0, 0.0], [0, 0, 0, 0]]))

    kept = keep_row_top(matrix, 2).toarray()

    assert kept.tolist() == [[0.0, 0.9, 0.0, 0.5], [3.0, 0.0, 0.0, 0.0], [0, 0, 0, 0]]


@pytest.mark.parametrize("text", ["(%)", "($)", "(+)", "(…)", "( )", "gains (%) over", "()"])
def test_parenthesis_without_a_word_defines_no_acronym(text):
    assert find_acronyms(text) == {}
