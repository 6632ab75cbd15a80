"""Composing speed: digests/s on one core, each with 10 papers out of a 2,000-paper day, for
5,000 readers (papers' shared blocks rendered once, then reused). No database: the papers and
readers are in memory, as the send path hands them to compose_digest.

    .venv/bin/python bench/compose.py

Every reader here has random papers for random topics, so no two share an entry ("why you got
this" for a paper): the worst case for composing's entry cache. In bench/rank.py's population
(100,000 readers, popular topics shared) 140,010 distinct entries serve 975,639 picks (it
prints the count).

Prints digests/s for compose_digest (subject, text and HTML rendered, headers and signed links
built) and for compose_digest plus turning the message into MIME bytes as the SMTP send path
does (messages.serialize_now). Target: >= 500/s.
"""

import os
import random
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
READERS = int(os.environ.get("BENCH_READERS", "5000"))
PAPERS = 2_000
PER_DIGEST = 10
WORDS = [
    "sparse",
    "mixture",
    "experts",
    "routing",
    "language",
    "model",
    "diffusion",
    "quantization",
    "reasoning",
    "agents",
    "retrieval",
    "graph",
    "neural",
    "network",
    "transformer",
    "attention",
    "scaling",
    "benchmark",
    "robotics",
    "policy",
    "reinforcement",
    "learning",
    "vision",
    "tokens",
    "alignment",
    "efficient",
    "training",
    "inference",
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def main() -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # As a production worker runs: DEBUG on would log every query and render templates in
    # debug mode, which costs about a quarter of the time per email.
    os.environ.setdefault("DEBUG", "0")
    import django

    django.setup()
    from digest.delivery.composing import compose_digest
    from digest.delivery.messages import serialize_now
    from digest.matching import Match
    from digest.models import Paper
    from subscriptions.models import Subscriber

    rng = random.Random(5)
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    papers = {
        pk: Paper(
            pk=pk,
            title=sentence(rng, 9)[:-1],
            abstract=" ".join(sentence(rng, rng.randint(12, 30)) for _ in range(8)),
            authors=[f"Author {rng.randint(1, 9999)}" for _ in range(rng.randint(1, 12))],
            arxiv_id=f"2603.{pk:05d}",
            upvotes=rng.randint(0, 300),
            first_seen=now,
            last_seen=now,
        )
        for pk in range(1, PAPERS + 1)
    }
    readers = []
    for pk in range(1, READERS + 1):
        topics = rng.sample(WORDS, 3)
        subscriber = Subscriber(pk=pk, email=f"reader{pk}@example.com", topics="\n".join(topics))
        matches = [
            Match(
                paper_id=paper_id,
                score=1.0,
                pinned=False,
                topic=topics[0],
                matched_terms=(topics[0], topics[1]),
                why=f'Matches your topic "{topics[0]}": {topics[0]}',
            )
            for paper_id in rng.sample(range(1, PAPERS + 1), PER_DIGEST)
        ]
        readers.append((subscriber, matches))
    period = date(2026, 3, 2)

    for label, serialize in (("compose", False), ("compose + MIME bytes", True)):
        started = time.process_time()
        for subscriber, matches in readers:
            message = compose_digest(subscriber, matches, period=period, papers=papers)
            if serialize:
                serialize_now(message)  # as the SMTP send path does
        elapsed = time.process_time() - started
        print(f"{label}: {len(readers) / elapsed:,.0f} digests/s (CPU time, one core)")


if __name__ == "__main__":
    main()
