"""Ingest speed: a generated 50,000-paper daily-text dump (about 55 MB), ingested into a fresh
database, then ingested again unchanged. Prints papers/s for both and the peak memory.

    .venv/bin/python bench/ingest.py                      # a temporary SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/ingest.py
        # a fresh database `bench_ingest` on that server, created and dropped here

BENCH_PAPERS changes the number of papers. Targets: >= 5,000 papers/s, < 300 MB, re-ingest at
least twice as fast.
"""

import os
import random
import resource
import sys
import time
from pathlib import Path

from scratch_database import scratch_database

PROJECT_DIR = Path(__file__).resolve().parent.parent
PAPERS = int(os.environ.get("BENCH_PAPERS", "50000"))
BENCH_DATABASE = "bench_ingest"
WORDS = [
    "sparse",
    "mixture",
    "experts",
    "routing",
    "language",
    "model",
    "diffusion",
    "reasoning",
    "agent",
    "retrieval",
    "benchmark",
    "scaling",
    "attention",
    "transformer",
    "token",
    "policy",
    "reward",
    "graph",
    "neural",
    "optimization",
    "robust",
    "efficient",
    "federated",
    "contrastive",
    "vision",
    "multimodal",
    "alignment",
    "inference",
    "memory",
    "quantization",
    "pruning",
    "distillation",
    "kernel",
    "latent",
    "representation",
    "evaluation",
    "dataset",
]


def write_dump(path: Path, papers: int) -> None:
    """The page-header layout, with per-paper metadata on every third paper."""
    rng = random.Random(20240122)
    with path.open("w", encoding="utf-8") as dump:
        dump.write(
            "new\n\nSubscribe\n\nDaily Papers\n\nbyAK and the research community\n\nAug 20\n\n"
        )
        for number in range(papers):
            title = " ".join(rng.choice(WORDS).title() for _ in range(rng.randint(5, 11)))
            abstract = " ".join(rng.choice(WORDS) for _ in range(rng.randint(100, 140))) + "."
            dump.write(f"{title}: Study {number}\n\n{abstract.capitalize()}\n\n")
            if number % 3 == 0:
                dump.write(f"  • {rng.randint(1, 30)} authors\n·\nJun 12, 2023 {number % 50}\n\n")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    with scratch_database(BENCH_DATABASE) as tmp:
        run_bench(tmp)


def run_bench(tmp: Path) -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from digest.ingest import ingest

    call_command("migrate", verbosity=0)
    dump = tmp / "dump.txt"
    write_dump(dump, PAPERS)
    before = max_rss_mb()

    started = time.perf_counter()
    first = ingest(str(dump))
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest(str(dump))
    again_seconds = time.perf_counter() - started
    assert (first.status, first.created) == ("succeeded", PAPERS), (first.status, first.error)
    assert (again.unchanged, again.created, again.updated) == (PAPERS, 0, 0)

    print(
        f"{PAPERS:,} papers, {dump.stat().st_size / 1e6:.1f} MB dump, {connection.vendor}",
        f"first ingest: {first_seconds:6.2f} s  {PAPERS / first_seconds:8,.0f} papers/s",
        f"re-ingest:    {again_seconds:6.2f} s  {PAPERS / again_seconds:8,.0f} papers/s  "
        f"({first_seconds / again_seconds:.1f}x faster, all unchanged)",
        f"peak memory (max RSS): {max_rss_mb():.0f} MB (after Django start-up: {before:.0f} MB)",
        sep="\n",
    )
    connection.close()


if __name__ == "__main__":
    main()
