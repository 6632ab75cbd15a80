"""Rank 100,000 subscribers × 2,000 new papers in one pass; print the time and peak memory.

    .venv/bin/python bench/rank.py [--subscribers 100000] [--papers 2000] [--rated 0.3] [--apart]
        [--semantic] [--workers 1]

What the figure covers: the pure ranking, given subscriber topics and paper texts in memory
(no database): building the paper index (tokenizing, stemming, acronyms, sparse matrices),
scoring every distinct topic line, the reader profiles (mapping their words onto the day's
vocabulary, each distinct remembered paper compared once, near duplicates of papers rated down),
masks (window, already sent, exclusions, threshold), per subscriber top-k, and building every
Match with its explanation. Reading rows from the database is not included.

The papers were all first seen in the past day: new to every weekly or daily reader (20% / 70%);
10% of readers had a digest 12 hours ago, so about half are new to them (the window mask). They
are the sample dumps' titles with abstracts re-assembled from random sample
sentences; topics are 1-3 word spans of sample titles and abstracts (popular ones shared
Zipf-like, as readers' interests are), 1-5 lines each, 10% with an exclusion line.
"""

import argparse
import multiprocessing
import os
import re
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_papers(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    from rank_corpus import read_samples

    samples = read_samples()
    sentences = [s for p in samples for s in re.split(r"(?<=\.)\s+", p.abstract) if len(s) > 30]
    titles, abstracts = [], []
    for i in range(n):
        sample = samples[i % len(samples)]
        picked = rng.choice(len(sentences), size=int(rng.integers(4, 10)), replace=False)
        own = re.split(r"(?<=\.)\s+", sample.abstract)[:2]
        titles.append(sample.title if i < len(samples) else f"{sample.title} ({i})")
        abstracts.append(" ".join(own + [sentences[j] for j in picked]))
    return titles, abstracts


def make_topics(titles: list[str], abstracts: list[str], rng: np.random.Generator) -> list[str]:
    from digest.matching import STOPWORDS

    phrases: dict[str, None] = {}
    for text in titles + abstracts[:500]:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]+", text)]
        for size in (1, 2, 2, 3):
            for start in range(0, max(len(words) - size, 0), 3):
                span = words[start : start + size]
                if span[0].lower() not in STOPWORDS and span[-1].lower() not in STOPWORDS:
                    phrases[" ".join(span).lower()] = None
    pool = list(phrases)
    rng.shuffle(pool)
    return pool[:20_000]


def attach_profiles(
    interests: list, share: float, rng: np.random.Generator, *, apart: bool = False
) -> int:
    """Give `share` of the interests a profile learned from 10-50 ratings (70% up) of papers of
    an earlier day: the sample papers with abstracts re-assembled as for today's. Not timed:
    the daily round reads stored profiles.

    Readers who rated the same paper remember the same vector of it, which the ranking compares
    with the day's papers once. With `apart`, every reader's are made a little different (as if
    each profile was learned with another day's word weights): the worst case for that sharing."""
    from digest.matching.profile import PAPER_WORDS, idf_of, paper_vector, profile_of_vectors

    titles, abstracts = make_papers(2_000, np.random.default_rng(11))
    titles = [f"{title} (earlier)" for title in titles]
    idf, unseen = idf_of(list(zip(titles, abstracts, strict=True)))
    vectors = [
        paper_vector(t, a, idf, unseen_idf=unseen, words=PAPER_WORDS)
        for t, a in zip(titles, abstracts, strict=True)
    ]
    chosen = np.flatnonzero(rng.random(len(interests)) < share)
    for reader in chosen.tolist():
        rated = rng.choice(len(titles), size=int(rng.integers(10, 51)), replace=False).tolist()
        values = np.where(rng.random(len(rated)) < 0.7, 1, -1).tolist()
        profile = profile_of_vectors(
            [vectors[i] for i in rated], values, [titles[i] for i in rated]
        )
        if apart:  # float32 steps near 1 are 6e-8: every reader gets a scale of their own
            scale = np.float32(1 - 1.2e-7 * reader)
            profile.liked.values = profile.liked.values * scale
            profile.disliked.values = profile.disliked.values * scale
        interests[reader].profile = profile
    return len(chosen)


def stand_in_vectors(papers: int, lines: list[str], rng: np.random.Generator) -> dict:
    """Stored embeddings as the ranking gets them (not timed: each was computed once, when its
    paper or topic was saved). 40 themes; a vector is its theme plus noise, so a line is within
    the blend's floor of about one paper in 40, as a real model's topic is of a few dozen."""
    themes = rng.normal(size=(40, 384)).astype(np.float32)
    themes /= np.linalg.norm(themes, axis=1, keepdims=True)

    def unit(count: int) -> np.ndarray:
        noise = rng.normal(scale=1.2 / np.sqrt(384), size=(count, 384)).astype(np.float32)
        vectors = themes[rng.integers(0, 40, size=count)] + noise
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return {
        "paper_vectors": unit(papers),
        "topic_vectors": dict(zip(lines, unit(len(lines)), strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument(
        "--rated", type=float, default=0.3, help="Share of readers with a profile (10-50 ratings)."
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="No two readers remember the same vector of a paper (the worst case).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Rank the readers in this many slices, each in a worker process of its own, at once.",
    )
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="Blend 384-dimension embeddings of every paper and distinct topic line.",
    )
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from digest.matching import Interest

    rng = np.random.default_rng(5)
    titles, abstracts = make_papers(options.papers, rng)
    pool = make_topics(titles, abstracts, rng)
    popularity = 1 / np.arange(1, len(pool) + 1) ** 0.8
    popularity /= popularity.sum()
    lines_per_reader = rng.integers(1, 6, size=options.subscribers)
    topic_ids = rng.choice(len(pool), size=int(lines_per_reader.sum()), p=popularity)
    exclusions = ["survey", "quantum", "benchmark", "medical imaging"]
    now = 1_800_000_000.0
    first_seen = now - rng.uniform(0, 86400, size=options.papers)  # all new: in every window
    interests, cursor = [], 0
    for count in lines_per_reader.tolist():
        topics = [pool[i] for i in topic_ids[cursor : cursor + count]]
        cursor += count
        excluded = [exclusions[int(rng.integers(4))]] if rng.random() < 0.1 else []
        since = now - float(rng.choice([7, 1, 0.5], p=[0.2, 0.7, 0.1])) * 86400
        interests.append(Interest(topics, excluded, 10, since))
    profiled = attach_profiles(interests, options.rated, rng, apart=options.apart)
    sent_rows = np.repeat(np.arange(options.subscribers), 2)
    sent_cols = rng.integers(0, options.papers, size=len(sent_rows))
    upvotes = rng.zipf(2.0, size=options.papers).clip(0, 800)
    seen = rng.integers(1, 4, size=options.papers)
    pinned = rng.random(options.papers) < 0.005
    print(
        f"{options.subscribers:,} subscribers ({int(lines_per_reader.sum()):,} topic lines, "
        f"{len(set(topic_ids.tolist())):,} distinct) × {options.papers:,} papers; "
        f"{profiled:,} readers with a profile learned from 10-50 ratings"
    )

    semantic = {}
    if options.semantic:
        semantic = stand_in_vectors(options.papers, [pool[i] for i in set(topic_ids.tolist())], rng)
    _day.update(
        titles=titles,
        abstracts=abstracts,
        interests=interests,
        upvotes=upvotes,
        seen=seen,
        pinned=pinned,
        first_seen=first_seen,
        sent=(sent_rows, sent_cols),
        semantic=semantic,
    )
    if options.workers <= 1:
        rank_in_one_pass()
    else:
        rank_in_slices(options.workers)


# The day's inputs, made before any worker starts: forked workers inherit them, as each rank
# worker reads its slice of readers from the database.
_day: dict = {}


def ranked(start: int, end: int) -> tuple[list[tuple[float, float]], list]:
    """Rank readers start:end as a plan_slice task does: the day's index (each worker builds
    its own), the slice's readers ranked, each pick's Match built. Returns the clock (wall and
    CPU) before and after each of those three phases, and each reader's matches."""
    from digest.matching import PaperIndex, rank, to_matches

    day = _day
    clock = [(time.perf_counter(), time.process_time())]
    index = PaperIndex.build(day["titles"], day["abstracts"])
    clock.append((time.perf_counter(), time.process_time()))
    sent_rows, sent_cols = day["sent"]
    mine = (sent_rows >= start) & (sent_rows < end)
    picks = rank(
        index,
        day["interests"][start:end],
        upvotes=day["upvotes"],
        seen_counts=day["seen"],
        pinned=day["pinned"],
        first_seen=day["first_seen"],
        already_sent=(sent_rows[mine] - start, sent_cols[mine]),
        **day["semantic"],
    )
    clock.append((time.perf_counter(), time.process_time()))
    matches = to_matches(index, picks, list(range(len(day["titles"]))), day["pinned"])
    clock.append((time.perf_counter(), time.process_time()))
    return clock, matches


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rank_in_one_pass() -> None:
    clock, matches = ranked(0, len(_day["interests"]))
    names = ["index papers", "score and pick", "explain (Match)"]
    for name, before, after in zip(names, clock[:-1], clock[1:], strict=True):
        print(f"  {name:<16} {after[0] - before[0]:6.2f} s wall, {after[1] - before[1]:6.2f} s CPU")
    wall, cpu = clock[-1][0] - clock[0][0], clock[-1][1] - clock[0][1]
    print(f"ranked in {wall:.2f} s wall ({cpu:.2f} s CPU), peak RSS {peak_rss_mb():.0f} MB")
    sent = sum(len(m) for m in matches)
    distinct = len({id(match) for chosen in matches for match in chosen})
    empty = sum(1 for m in matches if not m)
    print(
        f"{sent:,} matches picked ({distinct:,} distinct paper-and-reason entries, each "
        f"composed once); {empty:,} subscribers with nothing relevant"
    )


def rank_slice(start: int, end: int) -> tuple[int, int, float]:
    """One worker's slice: (matches, readers with nothing relevant, its peak RSS in MB)."""
    _, matches = ranked(start, end)
    return sum(len(m) for m in matches), sum(1 for m in matches if not m), peak_rss_mb()


def rank_in_slices(workers: int) -> None:
    """The readers in `workers` contiguous slices, each ranked by a worker process of its own
    (forked, as a Celery prefork worker is), all at once: plan_slice tasks on `workers` rank
    workers. The time runs from handing out the slices to the last one done."""
    n = len(_day["interests"])
    bounds = [(n * w // workers, n * (w + 1) // workers) for w in range(workers)]
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        done = list(pool.map(rank_slice, *zip(*bounds, strict=True)))
    wall = time.perf_counter() - started
    print(
        f"ranked in {wall:.2f} s wall, in {workers} slices on {workers} worker processes "
        f"(peak RSS of one: {max(peak for _, _, peak in done):.0f} MB)"
    )
    print(
        f"{sum(sent for sent, _, _ in done):,} matches picked; "
        f"{sum(empty for _, empty, _ in done):,} subscribers with nothing relevant"
    )


if __name__ == "__main__":
    main()
