"""Embeddings in the database, on the real shipped model: made once per version of a paper's
text, redone when it or the model changes, read by the day's ranking (with each reader's liked
papers as one more line), and a missing model falls back to words alone."""

import io
import logging

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings

from digest.matching import semantic, vectors
from digest.matching.selection import embed_new_topic_lines, select_papers
from digest.matching.text import parse_topic_lines
from digest.models import PaperEmbedding, Rating, TopicEmbedding
from subscriptions.models import Subscriber
from tests.digest.matching.matching_records import NOW, make_paper, make_subscriber
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db

EXPERTS = (
    "Routing tokens to experts",
    "A gating network sends each token to two of 64 feed-forward experts, so a model grows "
    "in parameters without growing in compute per token.",
)
QUASARS = ("Quasar spectra", "Redshifts of distant quasars from broad emission lines.")


def stored() -> dict[int, tuple[str, str]]:
    return dict(
        (paper_id, (model, digest))
        for paper_id, model, digest in PaperEmbedding.objects.values_list(
            "paper_id", "model", "text_hash"
        )
    )


def test_each_paper_is_embedded_once_and_again_only_when_its_text_changes():
    first, second = make_paper(*EXPERTS), make_paper(*QUASARS)

    assert vectors.embed_missing_papers().embedded == 2
    before = stored()
    again = vectors.embed_missing_papers()
    assert (again.embedded, again.fresh) == (0, 2)

    first.upvotes = 40  # saved, same text: nothing to redo
    first.save()
    assert vectors.embed_missing_papers().embedded == 0
    second.title = "Quasar spectra, revised"
    second.save()
    assert vectors.embed_missing_papers().embedded == 1
    after = stored()
    assert after[first.pk] == before[first.pk] and after[second.pk] != before[second.pk]
    vector = vectors.load_paper_vectors([second.pk])[0]
    expected = semantic.embed_texts([semantic.paper_text(second.title, second.abstract)])[0]
    assert np.allclose(vector, expected, atol=1e-5)


def test_vectors_of_another_model_are_redone():
    paper = make_paper(*EXPERTS)
    vectors.embed_missing_papers()
    PaperEmbedding.objects.update(model="sha-of-an-older-model")

    assert not vectors.load_paper_vectors([paper.pk]).any()  # never mixed with this model's
    assert vectors.embed_missing_papers().embedded == 1
    assert stored()[paper.pk][0] == vectors.model_key()


def test_vectors_of_the_same_model_reading_more_tokens_are_redone(monkeypatch):
    paper = make_paper(*EXPERTS)
    vectors.embed_missing_papers()
    before = vectors.model_key()

    monkeypatch.setattr(semantic, "MAX_TOKENS", semantic.MAX_TOKENS * 2)

    assert vectors.model_key() != before
    assert not vectors.load_paper_vectors([paper.pk]).any()
    assert vectors.embed_missing_papers().embedded == 1


def test_command_is_idempotent_and_all_redoes_everything():
    for i in range(3):
        make_paper(f"{EXPERTS[0]} {i}", EXPERTS[1])
    out = io.StringIO()

    call_command("embed_papers", stdout=out)
    call_command("embed_papers", stdout=out)
    call_command("embed_papers", "--all", stdout=out)

    assert out.getvalue().splitlines() == [
        "3 papers embedded, 0 already up to date.",
        "0 papers embedded, 3 already up to date.",
        "3 papers embedded, 0 already up to date.",
    ]


def test_a_killed_run_keeps_its_finished_batches_and_the_next_run_carries_on(monkeypatch):
    papers = [make_paper(f"{QUASARS[0]} {i}", QUASARS[1]) for i in range(5)]
    real = vectors.embed_texts
    calls = []

    def dies_on_the_second_batch(texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would stop it, mid-run
        return real(texts)

    monkeypatch.setattr(vectors, "embed_texts", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        call_command("embed_papers", "--batch", "2", stdout=io.StringIO())
    assert set(stored()) == {papers[0].pk, papers[1].pk}

    monkeypatch.setattr(vectors, "embed_texts", real)
    out = io.StringIO()
    call_command("embed_papers", "--batch", "2", stdout=out)
    assert out.getvalue().strip() == "3 papers embedded, 2 already up to date."
    assert set(stored()) == {paper.pk for paper in papers}


def test_a_reader_saving_topics_has_their_new_lines_embedded_and_exclusions_left_out():
    from digest.tasks import embed_reader_topics

    reader = make_subscriber("mixture of experts\nquasars\n-survey")
    TopicEmbedding.objects.all().delete()  # saved while the broker was down

    assert embed_reader_topics(reader.pk) == 2
    assert set(vectors.load_topic_vectors(["mixture of experts", "quasars", "survey"])) == {
        "mixture of experts",
        "quasars",
    }
    assert embed_reader_topics(reader.pk) == 0  # nothing new the second time
    assert embed_reader_topics(reader.pk + 1) == 0  # a reader who is gone


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(any_text)
def test_whatever_a_reader_types_their_topic_lines_are_embedded_once_each(topics):
    TopicEmbedding.objects.all().delete()
    reader = Subscriber(topics=topics)
    lines, _ = parse_topic_lines(reader.topic_lines)

    assert embed_new_topic_lines([reader]) == len({vectors.text_hash(line) for line in lines})
    assert set(vectors.load_topic_vectors(lines)) == set(lines)
    assert embed_new_topic_lines([reader, reader]) == 0


def test_topic_lines_are_embedded_once_whoever_typed_them():
    assert vectors.embed_topic_lines(["mixture of experts", "quasars", "mixture of experts"]) == 2
    assert vectors.embed_topic_lines(["quasars", "dark matter"]) == 1
    assert TopicEmbedding.objects.count() == 3
    found = vectors.load_topic_vectors(["quasars", "never typed"])
    assert list(found) == ["quasars"] and found["quasars"].shape == (semantic.DIMENSIONS,)


def test_the_day_ranks_a_paper_in_other_words_and_one_like_the_readers_liked_papers():
    other_words = make_paper(*EXPERTS, upvotes=5)
    liked = make_paper(
        "Conditional computation with sparse expert layers",
        "Only a few expert sub-networks run for each input, chosen by a learned router.",
    )
    make_paper(*QUASARS)
    vectors.embed_missing_papers()
    topical = make_subscriber("mixture of experts")
    fan = make_subscriber("galaxy surveys")
    Rating.objects.create(subscriber=fan, paper=liked, value=Rating.Value.MORE)

    chosen = select_papers([topical, fan], now=NOW)

    assert other_words.pk in [m.paper_id for m in chosen[topical.pk]]
    why = {m.paper_id: m.why for m in chosen[fan.pk]}
    assert why[other_words.pk].startswith("Close in meaning to papers you liked")
    assert liked.pk not in why  # rated: never sent back


def test_a_missing_model_ranks_on_words_warns_once_and_says_so(client, settings, tmp_path, caplog):
    make_paper(*EXPERTS)  # close in meaning, but without the words
    in_words = make_paper("Mixture of experts, in words", EXPERTS[1])
    vectors.embed_missing_papers()
    reader = make_subscriber("mixture of experts")
    settings.EMBEDDING_MODEL = str(tmp_path / "gone.onnx")

    with caplog.at_level(logging.WARNING, logger="digest.matching.semantic"):
        by_words = select_papers([reader], now=NOW)[reader.pk]
        select_papers([reader], now=NOW)
        response = client.get("/healthz")

    assert [m.paper_id for m in by_words] == [in_words.pk]
    assert by_words[0].why.startswith('Matches your topic "mixture of experts"')
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "gone.onnx does not exist" in warnings[0].getMessage()
    assert response.status_code == 200
    assert response.json()["semantic"] == (
        f"unavailable: embedding model {tmp_path / 'gone.onnx'} does not exist, lexical ranking"
    )
    with pytest.raises(CommandError, match="unavailable: embedding model"):
        call_command("embed_papers", stdout=io.StringIO())
