"""Print the blind judging pool for new queries: every system's top 15, merged, sorted by title.

    .venv/bin/python bench/rank_judging.py "query one" "query two" > pool.txt

Read each candidate's title and abstract, then grade it in bench/judged_queries.json
(3 = squarely on the interest, 2 = substantially about it, 1 = touches it; leave out the rest).
"""

import sys

from ranking_quality import bm25_ranker, paperboy_ranker, setup, tfidf_ranker

POOL_DEPTH = 15


def main(queries: list[str]) -> None:
    setup()
    from rank_corpus import read_samples

    papers = read_samples()
    documents = [f"{p.title}. {p.abstract}" for p in papers]
    paperboy = paperboy_ranker(
        [p.title for p in papers], [p.abstract for p in papers], [p.upvotes for p in papers]
    )
    rankers = [bm25_ranker(documents), tfidf_ranker(documents)]
    for query in queries:
        pool = set(paperboy(query, POOL_DEPTH))
        for ranker in rankers:
            pool.update(ranker(query)[:POOL_DEPTH])
        print(f"=== {query} ({len(pool)} candidates)")
        for i in sorted(pool, key=lambda i: papers[i].title.lower()):
            print(f"- {papers[i].title}\n    {papers[i].abstract[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
