"""The reader profile: learned from ratings off the request path, used by the daily ranking, said
in "why you got this", and `search_papers --subscriber`."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from config.celery import app as celery_app
from digest.feedback import profiles, ratings
from digest.ingest.records import title_key
from digest.matching import Interest, PaperIndex, rank, select_papers, to_matches
from digest.matching.profile import (
    PAPER_WORDS,
    PROFILE_WORDS,
    Profile,
    RatedPaper,
    Vectors,
    idf_of,
    learn_profile,
    paper_vector,
)
from digest.models import DeliveredPaper, Delivery, Paper, Rating, ReaderProfile
from subscriptions import links
from subscriptions.models import Subscriber

NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)

GRAPHS = [
    ("Message passing graph neural networks for molecules", "Graph neural networks pass "
     "messages between atoms of molecules to predict molecular properties."),
    ("Equivariant graph networks for molecular dynamics", "Equivariant message passing over "
     "atoms predicts forces in molecular dynamics simulations of molecules."),
    ("Graph transformers for protein molecules", "We pass messages over molecular graphs of "
     "atoms with attention to predict properties of molecules."),
]  # fmt: skip
SPEECH = [
    ("Streaming speech recognition with transducers", "Transducers recognise speech from audio "
     "streams with low latency for spoken language."),
    ("Speech recognition for accented speakers", "Audio of accented spoken language degrades "
     "speech recognition; we adapt acoustic models."),
]  # fmt: skip
OTHER = [
    ("Optimization of deep networks", "We study optimization of deep networks on benchmarks."),
    ("Robot grasping from touch", "Robots grasp objects from tactile sensing in clutter."),
    ("Federated learning with drift", "Clients drift in federated learning over rounds."),
]


def corpus() -> tuple[list[str], list[str]]:
    papers = GRAPHS + SPEECH + OTHER
    return [t for t, _ in papers], [a for _, a in papers]


def profile_of(liked=(), disliked=()) -> Profile:
    titles, abstracts = corpus()
    idf, unseen = idf_of(list(zip(titles, abstracts, strict=True)))
    rated = [RatedPaper(titles[i], abstracts[i], 1) for i in liked]
    rated += [RatedPaper(titles[i], abstracts[i], -1) for i in disliked]
    return learn_profile(rated, idf, unseen_idf=unseen)


def ranked(interest: Interest, *, sent=(), extra=()) -> list:
    titles, abstracts = corpus()
    titles, abstracts = titles + [t for t, _ in extra], abstracts + [a for _, a in extra]
    index = PaperIndex.build(titles, abstracts)
    n = len(titles)
    picks = rank(
        index,
        [interest],
        upvotes=[0] * n,
        seen_counts=[1] * n,
        pinned=[False] * n,
        already_sent=([0] * len(sent), list(sent)),
    )
    return to_matches(index, picks, list(range(n)), [False] * n)[0]


# --- pure ----------------------------------------------------------------------------------------


def test_a_profile_survives_packing_for_the_database():
    profile = profile_of(liked=[0, 1], disliked=[3])
    again = Profile.from_bytes(profile.to_bytes(), profile.liked_titles)

    for name in ("weights", "liked", "disliked"):
        for part in ("hashes", "values", "offsets"):
            assert (
                getattr(getattr(again, name), part) == getattr(getattr(profile, name), part)
            ).all()
    assert again.liked_titles == [GRAPHS[0][0], GRAPHS[1][0]]


def test_a_paper_like_one_rated_up_is_picked_and_says_which():
    # The topic matches neither graph paper left; the profile brings the third one in.
    interest = Interest(["speech recognition"], profile=profile_of(liked=[0, 1]))

    picks = {m.paper_id: m for m in ranked(interest, sent=[0, 1])}

    assert 2 in picks  # "Graph transformers for protein molecules"
    assert picks[2].why.startswith("Like ")
    assert "which you rated up" in picks[2].why
    assert picks[2].liked_title in (GRAPHS[0][0], GRAPHS[1][0])
    assert picks[3].why.startswith('Matches your topic "speech recognition"')


def test_without_a_profile_the_topics_alone_decide():
    picks = ranked(Interest(["speech recognition"]))

    assert sorted(m.paper_id for m in picks) == [3, 4]
    assert all(m.liked_title == "" for m in picks)


def test_a_near_duplicate_of_a_paper_rated_down_sinks():
    topic = ["speech recognition"]
    # A re-post of the streaming paper under another title, and the paper it copies rated down.
    repost = ("Low-latency streaming speech recognition", SPEECH[0][1])
    disliked = profile_of(disliked=[3])

    plain = {m.paper_id: m.score for m in ranked(Interest(topic), extra=[repost])}
    sunk = {m.paper_id: m.score for m in ranked(Interest(topic, profile=disliked), extra=[repost])}

    repost_id = len(GRAPHS + SPEECH + OTHER)
    assert plain[repost_id] > plain[4]  # the repost would come before the other speech paper
    assert sunk.get(repost_id, 0) < sunk[4]
    assert sunk.get(3, 0) < 0.01  # the paper itself: cosine 1, next to nothing left


def test_readers_who_rated_the_same_papers_rank_as_each_would_alone():
    # The ranking compares each distinct remembered paper with the day's papers once; a reader
    # sharing rated papers with others must still get exactly their own ranking.
    repost = ("Low-latency streaming speech recognition", SPEECH[0][1])
    readers = [
        Interest(["speech recognition"], profile=profile_of(liked=[0, 1], disliked=[3])),
        Interest(["speech recognition"], profile=profile_of(liked=[1], disliked=[3])),
        Interest(["speech recognition"]),
        Interest(["molecules"], profile=profile_of(liked=[0, 1], disliked=[3])),
        Interest(["speech recognition"], profile=profile_of(liked=[5], disliked=[4, 3])),
    ]
    titles, abstracts = corpus()
    titles, abstracts = titles + [repost[0]], abstracts + [repost[1]]
    index = PaperIndex.build(titles, abstracts)
    n = len(titles)

    def digests(interests):
        picks = rank(index, interests, upvotes=[0] * n, seen_counts=[1] * n, pinned=[False] * n)
        return to_matches(index, picks, list(range(n)), [False] * n)

    together = digests(readers)
    alone = [digests([reader])[0] for reader in readers]

    assert together == alone
    assert together[0] != together[2]  # the profile did change something


def test_a_stored_profile_missing_its_titles_names_no_paper_and_shifts_no_other_readers():
    liked = profile_of(liked=[0, 1])
    untitled = Profile.from_bytes(liked.to_bytes(), [])  # titles lost, vectors kept
    readers = [
        Interest(["speech recognition"], profile=untitled),
        Interest(["speech recognition"], profile=liked),
    ]
    titles, abstracts = corpus()
    index = PaperIndex.build(titles, abstracts)
    n = len(titles)
    picks = rank(index, readers, upvotes=[0] * n, seen_counts=[1] * n, pinned=[False] * n)
    first, second = to_matches(index, picks, list(range(n)), [False] * n)

    assert {m.why for m in first if m.paper_id == 2} == {"Like papers you rated up"}
    [graph] = [m for m in second if m.paper_id == 2]
    assert graph.liked_title in (GRAPHS[0][0], GRAPHS[1][0])


def _vectors(rows):
    return Vectors.of([dict(row) for row in rows])


def test_distinct_rows_keep_apart_rows_that_differ_in_any_word_weight_or_order():
    rows = [
        [(1, 0.5), (2, 0.5)],
        [(1, 0.5), (2, 0.5)],  # the same as the first
        [(2, 0.5), (1, 0.5)],  # the same words in another order
        [(1, 0.5), (2, 0.25)],  # another weight
        [(1, 0.5), (3, 0.5)],  # another second word
        [(1, 0.5)],  # shorter
        [],
        [],
    ]
    distinct, positions = _vectors(rows).distinct()

    assert positions.tolist() == [0, 0, 1, 2, 3, 4, 5, 5]
    assert len(distinct) == 6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 5), st.sampled_from([0.25, 0.5, 1.0])),
            max_size=4,
            unique_by=lambda entry: entry[0],
        ),
        max_size=12,
    )
)
def test_distinct_rows_give_back_every_row_exactly(rows):
    vectors = _vectors(rows)
    distinct, positions = vectors.distinct()

    again = distinct.rows(positions)
    assert again.offsets.tolist() == vectors.offsets.tolist()
    assert again.hashes.tolist() == vectors.hashes.tolist()
    assert again.values.tolist() == vectors.values.tolist()
    assert len(distinct) == len({tuple(row) for row in rows})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=400), st.sampled_from([1, -1]))
def test_any_rated_text_learns_a_bounded_unit_profile(title, abstract, value):
    idf, unseen = idf_of([(title, abstract), ("Graphs", "Graph networks.")])
    vector = paper_vector(title, abstract, idf, unseen_idf=unseen, words=PAPER_WORDS)
    profile = learn_profile([RatedPaper(title, abstract, value)], idf, unseen_idf=unseen)

    assert len(vector) <= PAPER_WORDS
    assert not vector or abs(sum(w * w for w in vector.values()) - 1) < 1e-3
    assert len(profile.weights.hashes) <= PROFILE_WORDS
    assert profile.liked_titles == ([title] if value > 0 else [])
    Profile.from_bytes(profile.to_bytes(), profile.liked_titles)


# --- with the database ---------------------------------------------------------------------------


def make_paper(title: str, abstract: str, *, days_ago: float = 1) -> Paper:
    seen = NOW - timedelta(days=days_ago)
    return Paper.objects.create(
        title=title, title_key=title_key(title), abstract=abstract, first_seen=seen, last_seen=seen
    )


def make_reader(topics: str = "speech recognition") -> Subscriber:
    return Subscriber.objects.create(
        email=f"r{Subscriber.objects.count()}@example.com",
        topics=topics,
        status=Subscriber.Status.ACTIVE,
    )


@pytest.fixture
def papers(db):
    return [make_paper(title, abstract) for title, abstract in GRAPHS + SPEECH + OTHER]


@pytest.fixture
def tasks_in_process(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def test_a_rating_from_the_link_relearns_the_profile_after_commit(
    client, papers, tasks_in_process, django_capture_on_commit_callbacks
):
    reader = make_reader()
    token = ratings.rating_token(reader, papers[0].pk)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(ratings.rate_path(papers[0].pk, "more", token))
    stored = ReaderProfile.objects.get(subscriber=reader)
    assert stored.ratings_count == 1 and stored.liked_titles == [GRAPHS[0][0]]

    undo = reverse(
        "digest:undo_rating", args=[links.make_token(reader, "preferences"), papers[0].pk]
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(undo)
    assert not ReaderProfile.objects.filter(subscriber=reader).exists()


def test_the_daily_ranking_uses_the_profile_and_never_sends_a_rated_paper(papers):
    reader = make_reader()
    ratings.rate(reader, papers[0], Rating.Value.MORE)
    ratings.rate(reader, papers[1], Rating.Value.MORE)
    ratings.rate(reader, papers[3], Rating.Value.LESS)  # the best speech paper
    profiles.learn_reader_profile(reader.pk)

    digest = select_papers([reader], now=NOW)[reader.pk]

    chosen = {m.paper_id: m for m in digest}
    assert papers[3].pk not in chosen  # rated down: never sent
    assert papers[0].pk not in chosen and papers[1].pk not in chosen  # rated: not again
    assert papers[2].pk in chosen
    assert "which you rated up" in chosen[papers[2].pk].why


def test_many_readers_with_and_without_profiles_rank_in_one_pass(papers, django_assert_num_queries):
    readers = [make_reader() for _ in range(6)]
    for reader in readers[::2]:
        ratings.rate(reader, papers[0], Rating.Value.MORE)
        profiles.learn_reader_profile(reader.pk)

    with django_assert_num_queries(6):  # and the papers' vectors
        selected = select_papers(readers, now=NOW)

    for position, reader in enumerate(readers):
        has_graphs = papers[2].pk in {m.paper_id for m in selected[reader.pk]}
        assert has_graphs == (position % 2 == 0)


def search(*args: str) -> list[dict]:
    out = StringIO()
    call_command("search_papers", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_search_papers_for_a_subscriber_ranks_their_next_digest(papers, settings):
    settings.SITE_URL = "https://paperboy.example"
    reader = make_reader()
    Paper.objects.filter(pk=papers[4].pk).update(arxiv_id="2401.00004")
    for paper in papers:  # seen within the window of a digest made now
        Paper.objects.filter(pk=paper.pk).update(first_seen=datetime.now(UTC) - timedelta(hours=2))
    delivery = Delivery.objects.create(
        subscriber=reader, period=NOW.date(), status=Delivery.Status.SENT, sent_at=NOW
    )
    Delivery.objects.filter(pk=delivery.pk).update(created_at=datetime.now(UTC) - timedelta(days=1))
    DeliveredPaper.objects.create(delivery=delivery, paper=papers[3], position=0, score=1.0)

    rows = search("--subscriber", reader.email.upper())

    assert [row["id"] for row in rows] == [papers[4].pk]  # papers[3] was sent already
    assert rows[0]["arxiv_id"] == "2401.00004"
    assert rows[0]["url"] == f"https://paperboy.example/papers/{papers[4].pk}/"
    assert set(rows[0]) >= {"id", "title", "arxiv_id", "url", "score", "why"}

    ratings.rate(reader, papers[0], Rating.Value.MORE)
    profiles.learn_reader_profile(reader.pk)
    after = search("--subscriber", reader.email, "--limit", "3")
    assert len(after) == 3 and papers[4].pk in [row["id"] for row in after]
    assert any("which you rated up" in row["why"] for row in after)


def test_search_papers_finds_the_reader_by_any_spelling_of_their_address(papers):
    reader = make_reader()
    Subscriber.objects.filter(pk=reader.pk).update(email="ada@xn--bcher-kva.example")
    Paper.objects.update(first_seen=datetime.now(UTC) - timedelta(hours=2))

    stored_spelling = search("--subscriber", "ada@xn--bcher-kva.example")
    assert stored_spelling  # the reader's speech recognition papers
    assert search("--subscriber", " Ada@BÜCHER.example ") == stored_spelling


def test_search_papers_says_what_is_wrong_with_its_arguments(db):
    with pytest.raises(CommandError, match="No subscriber"):
        call_command("search_papers", "--subscriber", "nobody@example.com")
    with pytest.raises(CommandError, match="either a query or --subscriber"):
        call_command("search_papers")
