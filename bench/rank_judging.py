"""Print the blind judging pool of queries: every system's top 15, merged, sorted by title, each
candidate with its title and whole abstract, and no word of which system proposed it.

    .venv/bin/python bench/rank_judging.py "query one" "query two" > pool.txt
    .venv/bin/python bench/rank_judging.py --from bench/judged_queries_other_words.json [--ungraded]

--from reads the queries (and their "why" rubric, printed above the pool) from a judged file,
and prints the papers it grades beside the pool; --ungraded prints only the candidates of the
pool that file does not grade yet. Read each candidate's title and whole abstract, then grade it
in the file (3 = squarely on the interest, 2 = substantially about it, 1 = touches it; leave out
the rest, which counts as 0). --counts counts the files' queries and grades.

The pool, at depth 15 for every system: Paperboy's lexical ranking (threshold on), BM25 and
TF-IDF (bench/ranking_quality.py), the shipped embedding model alone (all-MiniLM-L6-v2 int8,
digest/matching/semantic.py: cosine of the topic line's vector with each paper's), and the hybrid
ranking (digest.matching.rank with those vectors) at every weight and floor
bench/ranking_semantic.py tries, so the shipped model's topic-only ranking at any setting the
bench may choose has its top 10 judged. The second rankings of its onboarding and residual
readers (with a learned profile) are not pooled. About 25 candidates a query.

How the judged set was judged. bench/judged_queries.json: 25 queries, first graded by an earlier
session of the project from the lexical pool alone (Paperboy, BM25, TF-IDF). Then every candidate
the semantic systems added to their pools was graded by an AI agent (Claude) reading its title
and whole abstract, blind to which system proposed it (the pool sorted by title, no scores), by
the standard each query's existing grades set; older grades were kept unless clearly wrong
(two papers left out were given 2 and 1). bench/judged_queries_other_words.json: 17 queries whose
relevant papers say it in other words, first graded from titles and the first 170-300
characters of each abstract; then regraded in full by that agent from whole abstracts over this
pool, blind the same way, each "why" rubric first rewritten as criteria per grade and then
applied to every candidate. Counts: 42 queries, 487 graded pairs: 218 graded 3, 110 graded 2,
159 graded 1 (the 25: 322 = 161 / 68 / 93; the 17: 165 = 57 / 42 / 66).
"""

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from ranking_quality import (
    JUDGED,
    bm25_ranker,
    paperboy_ranker,
    positive_text,
    setup,
    tfidf_ranker,
)

POOL_DEPTH = 15
OTHER_WORDS = JUDGED.parent / "judged_queries_other_words.json"


def embedding_pool(papers: Sequence, queries: Sequence[str]) -> Callable[[str], set[int]]:
    """A function of a query giving the top POOL_DEPTH of the embedding model alone and of the
    hybrid ranking at every setting bench/ranking_semantic.py tries, merged."""
    from ranking_semantic import FLOORS, WEIGHTS, shipped_vectors

    from digest.matching import Interest, PaperIndex, parse_topic_lines, rank, semantic_blend
    from digest.matching.semantic import paper_text

    lines = sorted({positive_text(q) for q in queries} | {t for q in queries for t in topics(q)})
    paper_vectors = shipped_vectors([paper_text(p.title, p.abstract) for p in papers])
    topic_vectors = dict(zip(lines, shipped_vectors(lines), strict=True))
    index = PaperIndex.build([p.title for p in papers], [p.abstract for p in papers])
    common = {
        "upvotes": [p.upvotes for p in papers],
        "seen_counts": [1] * len(papers),
        "pinned": [False] * len(papers),
        "paper_vectors": paper_vectors,
        "topic_vectors": topic_vectors,
    }

    def hybrid(query: str, weight: float, floor: float) -> list[int]:
        semantic_blend.SEMANTIC_FLOOR, default = floor, semantic_blend.SEMANTIC_FLOOR
        try:
            found, exclusions = parse_topic_lines(query.replace(";", "\n").splitlines())
            interest = Interest(found, exclusions, POOL_DEPTH)
            return rank(index, [interest], semantic_weight=weight, **common).papers.tolist()
        finally:
            semantic_blend.SEMANTIC_FLOOR = default

    def pool(query: str) -> set[int]:
        cosine = paper_vectors @ topic_vectors[positive_text(query)]
        found = set(cosine.argsort()[::-1][:POOL_DEPTH].tolist())
        for weight in WEIGHTS:
            for floor in FLOORS:
                found.update(hybrid(query, weight, floor))
        return found

    return pool


def topics(query: str) -> list[str]:
    from digest.matching import parse_topic_lines

    return parse_topic_lines(query.replace(";", "\n").splitlines())[0]


def read_judged(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def print_counts() -> None:
    """Queries and graded pairs per grade, in each judged file."""
    for path in (JUDGED, OTHER_WORDS):
        judged = read_judged(path)
        grades = Counter(g for item in judged for g in item["grades"].values())
        per_grade = ", ".join(f"{grades[g]} graded {g}" for g in (3, 2, 1))
        print(f"{path.name}: {len(judged)} queries, {sum(grades.values())} pairs ({per_grade})")


def main(queries: list[dict], *, ungraded: bool = False) -> None:
    setup()
    from rank_corpus import read_samples

    papers = read_samples()
    documents = [f"{p.title}. {p.abstract}" for p in papers]
    paperboy = paperboy_ranker(
        [p.title for p in papers], [p.abstract for p in papers], [p.upvotes for p in papers]
    )
    rankers = [bm25_ranker(documents), tfidf_ranker(documents)]
    semantic = embedding_pool(papers, [item["query"] for item in queries])
    for item in queries:
        query = item["query"]
        pool = set(paperboy(query, POOL_DEPTH)) | semantic(query)
        for ranker in rankers:
            pool.update(ranker(query)[:POOL_DEPTH])
        graded = item.get("grades", {})
        if ungraded:
            shown = {i for i in pool if papers[i].title not in graded}
        else:  # and the papers graded already, to grade again whether the pool has them or not
            by_title = {p.title: i for i, p in enumerate(papers)}
            shown = pool | {by_title[title] for title in graded}
        print(f"=== {query} ({len(pool)} candidates, {len(shown)} shown)")
        if item.get("why"):
            print(f"why: {item['why']}")
        for i in sorted(shown, key=lambda i: papers[i].title.lower()):
            print(f"- {papers[i].title}\n    {' '.join(papers[i].abstract.split())}\n")


def parse_options(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queries", nargs="*", help="Queries to pool, as a reader types them.")
    parser.add_argument("--from", dest="source", type=Path, help="A judged file to read.")
    parser.add_argument(
        "--ungraded", action="store_true", help="Only the candidates --from does not grade."
    )
    parser.add_argument(
        "--counts", action="store_true", help="Count the judged files' queries and grades."
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse_options(sys.argv[1:])
    if options.counts:
        print_counts()
    else:
        items = [{"query": q} for q in options.queries]
        if options.source:
            items += read_judged(options.source)
        main(items, ungraded=options.ungraded)
