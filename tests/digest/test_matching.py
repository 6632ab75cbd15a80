import gc
import json
import weakref
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse

from digest.matching import (
    PaperIndex,
    find_acronyms,
    keep_row_top,
    search_papers,
    select_papers,
    stem,
    top_k,
    topic_stems,
)
from digest.models import DeliveredPaper, Delivery, Paper
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
FILLER = (
    "We study optimization of neural networks on standard benchmarks and report results that "
    "improve over strong baselines across several settings and datasets."
)


def make_paper(title: str, abstract: str = FILLER, *, days_ago: float = 1, **fields) -> Paper:
    first_seen = NOW - timedelta(days=days_ago)
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=first_seen,
        last_seen=first_seen,
        **fields,
    )


def make_subscriber(topics: str, **fields) -> Subscriber:
    fields.setdefault("email", f"reader{Subscriber.objects.count()}@example.com")
    return Subscriber.objects.create(status=Subscriber.Status.ACTIVE, topics=topics, **fields)


def titles(matches) -> list[str]:
    by_id = dict(Paper.objects.values_list("id", "title"))
    return [by_id[m.paper_id] for m in matches]


def background() -> None:
    """Unrelated papers, so that word rarity (idf) behaves as in a real listing."""
    for i, subject in enumerate(
        [
            "Graph neural networks for molecule property prediction",
            "Speech recognition with streaming transformers",
            "Robot grasping from tactile sensing",
            "Federated learning under client drift",
            "Protein structure prediction at scale",
            "Image segmentation with weak labels",
        ]
    ):
        make_paper(f"{subject} {i}")


def send(subscriber: Subscriber, papers: list[Paper], *, when: datetime) -> Delivery:
    delivery = Delivery.objects.create(
        subscriber=subscriber, period=when.date(), status=Delivery.Status.SENT, sent_at=when
    )
    Delivery.objects.filter(pk=delivery.pk).update(created_at=when)
    for position, paper in enumerate(papers):
        DeliveredPaper.objects.create(delivery=delivery, paper=paper, position=position, score=1)
    return delivery


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


# --- what a digest holds -------------------------------------------------------------------------


def test_hidden_paper_is_never_selected():
    background()
    make_paper("Speculative decoding for LLM inference", hidden=True)
    shown = make_paper("Speculative decoding with draft heads")
    subscriber = make_subscriber("speculative decoding")
    assert [m.paper_id for m in select_papers([subscriber], now=NOW)[subscriber.id]] == [shown.id]
    assert titles(search_papers("speculative decoding")) == [shown.title]


def test_an_edited_title_counts_at_the_next_selection_although_the_index_is_reused():
    background()
    subscriber = make_subscriber("speculative decoding")
    assert select_papers([subscriber], now=NOW)[subscriber.id] == []
    edited = Paper.objects.get(title__startswith="Speech recognition")
    edited.title = "Speculative decoding at the edge"
    edited.save(update_fields=["title"])

    assert [m.paper_id for m in select_papers([subscriber], now=NOW)[subscriber.id]] == [edited.id]


def test_the_same_texts_reuse_one_index_and_other_texts_get_their_own():
    titles_, abstracts = ["Speculative decoding", "Robot grasping"], [FILLER, FILLER]
    first = PaperIndex.of(titles_, abstracts)

    assert PaperIndex.of(list(titles_), list(abstracts)) is first
    assert PaperIndex.of(["Speculative decoding", "Robot grasping!"], abstracts) is not first


def test_an_index_no_longer_the_latest_is_let_go():
    first = weakref.ref(PaperIndex.of(["Speculative decoding"], [FILLER]))
    PaperIndex.of(["Robot grasping"], [FILLER])
    gc.collect()

    assert first() is None


def test_paper_already_sent_is_not_sent_again():
    background()
    subscriber = make_subscriber("speculative decoding", frequency=Subscriber.Frequency.WEEKLY)
    old = make_paper("Speculative decoding for LLM inference", days_ago=3)
    new = make_paper("Speculative decoding with draft heads", days_ago=1)
    send(subscriber, [old], when=NOW - timedelta(days=2))
    assert [m.paper_id for m in select_papers([subscriber], now=NOW)[subscriber.id]] == [new.id]


def test_daily_digest_holds_papers_first_seen_since_the_previous_sent_digest():
    background()
    subscriber = make_subscriber("speculative decoding")
    make_paper("Speculative decoding for LLM inference", days_ago=3)
    new = make_paper("Speculative decoding with draft heads", days_ago=0.5)
    send(subscriber, [], when=NOW - timedelta(days=1))
    assert [m.paper_id for m in select_papers([subscriber], now=NOW)[subscriber.id]] == [new.id]


def test_failed_or_skipped_deliveries_do_not_move_the_window():
    background()
    subscriber = make_subscriber("speculative decoding")
    older = make_paper("Speculative decoding for LLM inference", days_ago=3)
    Delivery.objects.create(
        subscriber=subscriber, period=(NOW - timedelta(days=1)).date(), status="failed"
    )
    picked = [m.paper_id for m in select_papers([subscriber], now=NOW)[subscriber.id]]
    assert picked == [older.id]


def test_first_and_weekly_digests_look_back_seven_days():
    background()
    make_paper("Speculative decoding, an old idea", days_ago=9)
    recent = make_paper("Speculative decoding for LLM inference", days_ago=6)
    first = make_subscriber("speculative decoding")
    weekly = make_subscriber("speculative decoding", frequency=Subscriber.Frequency.WEEKLY)
    send(weekly, [], when=NOW - timedelta(days=1))  # a weekly window ignores the last digest
    selected = select_papers([first, weekly], now=NOW)
    assert [m.paper_id for m in selected[first.id]] == [recent.id]
    assert [m.paper_id for m in selected[weekly.id]] == [recent.id]


def test_papers_first_seen_after_now_wait_for_a_later_digest():
    background()
    make_paper("Speculative decoding tomorrow", days_ago=-1)
    subscriber = make_subscriber("speculative decoding")
    assert select_papers([subscriber], now=NOW) == {subscriber.id: []}


def test_pinned_matching_paper_comes_first_and_pinned_unrelated_paper_is_not_sent():
    background()
    best = make_paper("Speculative decoding for LLM inference", upvotes=400)
    pinned = make_paper("Training speedups", "Speculative decoding helps here too.", pinned=True)
    make_paper("A pinned paper about robots", pinned=True)
    subscriber = make_subscriber("speculative decoding")
    matches = select_papers([subscriber], now=NOW)[subscriber.id]
    assert [m.paper_id for m in matches] == [pinned.id, best.id]
    assert [m.pinned for m in matches] == [True, False]
    assert matches[0].why.startswith("Pinned by the editors.")


def test_papers_per_digest_caps_the_list_best_first():
    background()
    for i in range(5):
        make_paper(f"Speculative decoding variant {i}", upvotes=i * 50)
    subscriber = make_subscriber("speculative decoding", papers_per_digest=3)
    matches = select_papers([subscriber], now=NOW)[subscriber.id]
    assert len(matches) == 3
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_each_subscriber_gets_their_best_topic_and_own_exclusions():
    background()
    moe = make_paper("Mixture-of-Experts (MoE) survey of routing")
    rlhf = make_paper("Reward models for reinforcement learning from human feedback (RLHF)")
    both = make_subscriber("mixture of experts\nRLHF\nnothing about quantum")
    no_surveys = make_subscriber("MoE\n-survey\nreward models")
    selected = select_papers([both, no_surveys], now=NOW)
    assert {m.paper_id: m.topic for m in selected[both.id]} == {
        moe.id: "mixture of experts",
        rlhf.id: "RLHF",
    }
    assert [(m.paper_id, m.topic) for m in selected[no_surveys.id]] == [(rlhf.id, "reward models")]


def test_subscriber_without_topics_gets_nothing():
    background()
    subscriber = make_subscriber("")
    assert select_papers([subscriber], now=NOW) == {subscriber.id: []}


def test_why_names_the_topic_and_the_papers_own_words():
    background()
    make_paper(
        "Sparse Mixture-of-Experts (MoE) at scale",
        "Each MoE layer routes tokens. Experts specialise.",
    )
    (match,) = search_papers("mixture of experts")
    assert match.topic == "mixture of experts"
    assert match.matched_terms[:2] == ("Mixture-of-Experts", "MoE")
    assert match.why.startswith('Matches your topic "mixture of experts" in the title: ')
    assert "Mixture-of-Experts, MoE" in match.why


def test_why_says_in_the_title_only_when_the_title_holds_the_whole_topic():
    background()
    make_paper(
        "ACE-Step: A Step Towards Music Generation Foundation Model",
        "Diffusion models enable faster synthesis; we build diffusion-based generation.",
    )
    make_paper("Diffusion models for video", "We generate video.")
    make_paper("LLM-based code repair", "Large language models (LLMs) repair code.")

    by_title = {m.paper_id: m for m in search_papers("diffusion models")}
    music, video = (
        by_title[Paper.objects.get(title__startswith=start).id] for start in ("ACE", "Diffusion")
    )
    assert music.why.startswith('Matches your topic "diffusion models": ')
    assert video.why.startswith('Matches your topic "diffusion models" in the title: ')
    (repair,) = search_papers("large language models code")
    assert repair.why.startswith('Matches your topic "large language models code" in the title')


def test_ranking_asks_the_database_a_fixed_number_of_questions(
    django_assert_num_queries,
):
    background()
    for i in range(4):
        make_paper(f"Speculative decoding variant {i}")
    few = [make_subscriber("speculative decoding") for _ in range(2)]
    many = [make_subscriber(f"speculative decoding\nvariant {i}\n-robots") for i in range(30)]
    for subscriber in few + many:
        send(subscriber, [], when=NOW - timedelta(days=2))
    # window starts, papers, what was sent, what was rated, profiles
    with django_assert_num_queries(5):
        select_papers(few, now=NOW)
    with django_assert_num_queries(5):
        selected = select_papers(many, now=NOW)
    assert all(len(matches) == 4 for matches in selected.values())


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 6), st.integers(1, 70)),
        elements=st.sampled_from([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 3.0]),
    ),
    st.integers(1, 12),
)
def test_blocked_top_k_keeps_the_same_values_as_a_full_sort(keys, k):
    columns, values = top_k(keys, k)
    expected = -np.sort(-keys, axis=1)[:, : min(k, keys.shape[1])]
    assert np.array_equal(values, expected)
    assert np.array_equal(np.take_along_axis(keys, columns, axis=1), values)
    assert all(len(set(row)) == len(row) for row in columns.tolist())


def test_many_subscribers_are_read_in_chunks_with_the_same_result(monkeypatch):
    background()
    old = make_paper("Speculative decoding for LLM inference", days_ago=3)
    new = make_paper("Speculative decoding with draft heads", days_ago=0.5)
    readers = [make_subscriber("speculative decoding") for _ in range(5)]
    for reader in readers[::2]:
        send(reader, [old], when=NOW - timedelta(days=1))
    whole = select_papers(readers, now=NOW)
    monkeypatch.setattr("digest.matching.selection.QUERY_CHUNK", 2)
    assert select_papers(readers, now=NOW) == whole
    assert [{m.paper_id for m in whole[r.id]} for r in readers] == [
        {new.id},
        {new.id, old.id},
        {new.id},
        {new.id, old.id},
        {new.id},
    ]


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


@pytest.mark.parametrize("text", ["(%)", "($)", "(+)", "(…)", "( )", "gains (%) over", "()"])
def test_parenthesis_without_a_word_defines_no_acronym(text):
    assert find_acronyms(text) == {}


def test_a_round_where_no_reader_matches_anything_selects_nothing_for_each():
    background()
    make_paper("Protein folding with lattice models", "We study protein folding on lattices.")
    readers = [
        make_subscriber("quantum error correction\nspeech synthesis"),
        make_subscriber("galaxy clusters"),
    ]

    picks = select_papers(readers, now=NOW)

    assert picks == {reader.id: [] for reader in readers}
