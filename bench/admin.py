"""The admin's list pages and dashboard on 10,000 papers and 100,000 subscribers: ms per page.

Needs a fresh, empty PostgreSQL database (it refuses one with papers or subscribers in it, unless
given --reuse to time again the data an earlier run created):

    createdb -h 127.0.0.1 -U postgres bench_admin
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_admin .venv/bin/python bench/admin.py

Prints, per page, the median and slowest of 7 renders (after one warm-up) and its query count.
"""

import os
import random
import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic here

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from digest.models import DeliveredPaper, Delivery, DigestRun, IngestRun, Paper  # noqa: E402
from subscriptions.models import Subscriber  # noqa: E402

PAPERS = 10_000
SUBSCRIBERS = 100_000
DAYS = 14
DELIVERIES_PER_DAY = 6_000  # 84,000 deliveries, 3 papers each
BATCH = 5_000
BUDGET_MS = 300
WORDS = [
    "sparse",
    "mixture",
    "experts",
    "diffusion",
    "retrieval",
    "transformer",
    "attention",
    "scaling",
    "agents",
    "reasoning",
    "reinforcement",
    "vision",
    "language",
    "protein",
    "graph",
    "quantization",
    "distillation",
    "robotics",
    "speech",
]


def populate(now) -> None:
    rng = random.Random(6)
    statuses = (
        [Subscriber.Status.ACTIVE] * 80
        + [Subscriber.Status.PENDING] * 10
        + [Subscriber.Status.UNSUBSCRIBED] * 5
        + [Subscriber.Status.BOUNCED] * 3
        + [Subscriber.Status.PAUSED] * 2
    )
    Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"reader{n}@example.com",
                status=rng.choice(statuses),
                topics="\n".join(rng.sample(WORDS, 3)),
                frequency=Subscriber.Frequency.WEEKLY if n % 7 == 0 else Subscriber.Frequency.DAILY,
                send_hour=rng.randrange(24),
            )
            for n in range(SUBSCRIBERS)
        ),
        batch_size=BATCH,
    )
    Paper.objects.bulk_create(
        (
            Paper(
                title=f"{' '.join(rng.sample(WORDS, 4)).title()} {n}",
                title_key=f"paper {n}",
                abstract=" ".join(rng.choices(WORDS, k=150)),
                authors=[f"Author {rng.randrange(5000)}" for _ in range(rng.randrange(1, 8))],
                arxiv_id=f"2511.{n:05d}",
                upvotes=rng.randrange(0, 300) if n % 3 else 0,
                sources=["daily-text"] if n % 4 else ["daily-text", "feed"],
                first_seen=now - timedelta(minutes=rng.randrange(60 * 24 * 60)),
                last_seen=now,
                hidden=n % 97 == 0,
                pinned=n % 991 == 0,
            )
            for n in range(PAPERS)
        ),
        batch_size=BATCH,
    )
    IngestRun.objects.bulk_create(
        IngestRun(
            source=f"/srv/dumps/{n:04d}.txt",
            format="daily-text",
            status=IngestRun.Status.SUCCEEDED,
            records=120,
            created=100,
            updated=15,
            unchanged=5,
            rejected=[{"where": f"line {line}", "why": "no abstract"} for line in range(40)],
            rejected_count=40,
        )
        for n in range(1_000)
    )
    runs = DigestRun.objects.bulk_create(
        DigestRun(now=now - timedelta(days=day), planned=DELIVERIES_PER_DAY) for day in range(DAYS)
    )
    subscriber_ids = list(Subscriber.objects.values_list("pk", flat=True))
    paper_ids = list(Paper.objects.values_list("pk", flat=True))
    for day, run in enumerate(runs):
        period = (now - timedelta(days=day)).date()
        deliveries = Delivery.objects.bulk_create(
            (
                Delivery(
                    subscriber_id=subscriber_id,
                    period=period,
                    run=run,
                    status=Delivery.Status.FAILED if n % 200 == 0 else Delivery.Status.SENT,
                    sent_at=None if n % 200 == 0 else now - timedelta(days=day),
                    attempts=1,
                    error="SMTPServerDisconnected: Connection unexpectedly closed"
                    if n % 200 == 0
                    else "",
                )
                for n, subscriber_id in enumerate(rng.sample(subscriber_ids, DELIVERIES_PER_DAY))
            ),
            batch_size=BATCH,
        )
        DeliveredPaper.objects.bulk_create(
            (
                DeliveredPaper(delivery=delivery, paper_id=paper_id, position=position, score=1.0)
                for delivery in deliveries
                for position, paper_id in enumerate(rng.sample(paper_ids, 3), start=1)
            ),
            batch_size=BATCH,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def time_page(client: Client, url: str) -> tuple[float, float, int]:
    client.get(url)  # warm-up
    timings = []
    for _ in range(7):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings), max(timings), len(queries)


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Give a fresh PostgreSQL database in DATABASE_URL.")
    call_command("migrate", verbosity=0)
    if Paper.objects.exists() or Subscriber.objects.exists():
        if "--reuse" not in sys.argv:
            sys.exit("The database has data: give a fresh one, or --reuse to time it again.")
    else:
        started = time.perf_counter()
        populate(timezone.now())
        print(f"populated in {time.perf_counter() - started:.0f} s")
    settings.DEBUG = False  # as in production: no query log kept
    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    print(
        f"{Paper.objects.count():,} papers, {Subscriber.objects.count():,} subscribers, "
        f"{Delivery.objects.count():,} deliveries, {DeliveredPaper.objects.count():,} digest items"
    )
    subscriber = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).first()
    pages = {
        "dashboard (admin index)": reverse("admin:index"),
        "papers": reverse("admin:digest_paper_changelist"),
        "papers, searched": reverse("admin:digest_paper_changelist") + "?q=diffusion",
        "papers, by upvotes": reverse("admin:digest_paper_changelist") + "?o=-3",
        "papers, hidden": reverse("admin:digest_paper_changelist") + "?hidden__exact=1",
        "subscribers": reverse("admin:subscriptions_subscriber_changelist"),
        "subscribers, searched": reverse("admin:subscriptions_subscriber_changelist")
        + "?q=reader4242",
        "subscribers, active at 07:00": reverse("admin:subscriptions_subscriber_changelist")
        + "?status__exact=active&send_hour=7",
        "ingest runs": reverse("admin:digest_ingestrun_changelist"),
        "digest runs": reverse("admin:digest_digestrun_changelist"),
        "deliveries": reverse("admin:digest_delivery_changelist"),
        "deliveries, failed": reverse("admin:digest_delivery_changelist") + "?status__exact=failed",
        "periodic tasks": reverse("admin:django_celery_beat_periodictask_changelist"),
        "subscriber change page": reverse(
            "admin:subscriptions_subscriber_change", args=[subscriber.pk]
        ),
    }
    slowest = 0.0
    for name, url in pages.items():
        median, worst, queries = time_page(client, url)
        slowest = max(slowest, median)
        print(f"{name:32} median {median:6.1f} ms  max {worst:6.1f} ms  {queries:2d} queries")
    verdict = "within" if slowest < BUDGET_MS else "OVER"
    print(f"slowest median {slowest:.1f} ms: {verdict} the {BUDGET_MS} ms budget")


if __name__ == "__main__":
    main()
