"""What a digest holds: its window, what was sent before, pins, caps and the reasons why."""

import gc
import weakref
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from digest.matching import (
    PaperIndex,
    search_papers,
    select_papers,
    top_k,
)
from digest.models import Delivery, Paper
from subscriptions.models import Subscriber
from tests.digest.matching.matching_records import (
    FILLER,
    NOW,
    background,
    make_paper,
    make_subscriber,
    send,
    titles,
)

pytestmark = pytest.mark.django_db


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
    # window starts, papers, what was sent, what was rated, profiles, the papers' vectors
    with django_assert_num_queries(6):
        select_papers(few, now=NOW)
    with django_assert_num_queries(6):
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


def test_a_round_where_no_reader_matches_anything_selects_nothing_for_each():
    background()
    make_paper("Protein folding with lattice models", "We study protein folding on lattices.")
    readers = [
        make_subscriber("quantum error correction\nspeech synthesis"),
        make_subscriber("galaxy clusters"),
    ]

    picks = select_papers(readers, now=NOW)

    assert picks == {reader.id: [] for reader in readers}
