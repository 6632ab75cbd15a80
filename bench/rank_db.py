"""select_papers end to end on a database: subscribers and papers read from rows, one call.

    .venv/bin/python bench/rank_db.py [--subscribers 20000]

Creates a throwaway test database (SQLite by default; DATABASE_URL picks another), ingests the
sample dumps (456 papers), creates the subscribers with topics drawn as in bench/rank.py (a
quarter with a previous sent digest, so the window and already-sent queries have rows to read),
then times select_papers and counts its queries. Prints the time, the query count and peak RSS.
"""

import argparse
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=20_000)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        run(options.subscribers, connection, CaptureQueriesContext, timezone)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(count: int, connection, CaptureQueriesContext, timezone) -> None:
    from rank import make_topics

    from digest.ingest import ingest
    from digest.matching import select_papers
    from digest.models import DeliveredPaper, Delivery, Paper
    from subscriptions.models import Subscriber

    for dump in sorted((ROOT / "samples" / "dumps").glob("*.txt")):
        ingest(str(dump))
    now = timezone.now() + timedelta(hours=1)
    papers = list(Paper.objects.values_list("id", "title", "abstract"))
    rng = np.random.default_rng(5)
    pool = make_topics([p[1] for p in papers], [p[2] for p in papers], rng)
    popularity = 1 / np.arange(1, len(pool) + 1) ** 0.8
    popularity /= popularity.sum()
    Subscriber.objects.bulk_create(
        [
            Subscriber(
                email=f"reader{i}@example.com",
                status=Subscriber.Status.ACTIVE,
                topics="\n".join(
                    pool[j] for j in rng.choice(len(pool), int(rng.integers(1, 6)), p=popularity)
                ),
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    subscribers = list(Subscriber.objects.all())
    earlier = now - timedelta(days=2)
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(subscriber=s, period=earlier.date(), status=Delivery.Status.SENT)
            for s in subscribers[::4]
        ],
        batch_size=2000,
    )
    Delivery.objects.update(created_at=earlier, sent_at=earlier)
    paper_ids = [p[0] for p in papers]
    DeliveredPaper.objects.bulk_create(
        [
            DeliveredPaper(
                delivery=d, paper_id=paper_ids[(7 * k) % len(paper_ids)], position=1, score=1
            )
            for k, d in enumerate(deliveries)
        ],
        batch_size=2000,
    )
    print(f"{count:,} subscribers × {len(papers)} papers on {connection.vendor}")

    started = time.perf_counter(), time.process_time()
    with CaptureQueriesContext(connection) as queries:
        selected = select_papers(subscribers, now=now)
    wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    picked = sum(len(m) for m in selected.values())
    print(f"select_papers in {wall:.2f} s wall ({cpu:.2f} s CPU), {len(queries)} queries")
    print(f"{picked:,} matches; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
