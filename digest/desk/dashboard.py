"""The editor's dashboard on the admin index: is today's run healthy? A handful of aggregates."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from digest.matching.semantic import status as semantic_status
from digest.models import Delivery, DigestRun, IngestRun, Paper
from subscriptions.models import Subscriber

CHART_DAYS = 14


def ingest_runs_for_lists() -> QuerySet[IngestRun]:
    """Ingest runs without their rejected records (up to a thousand each); `rejected_count`
    says how many there were."""
    return IngestRun.objects.defer("rejected")


def subscribers_by_status() -> list[tuple[str, int]]:
    counts = dict(
        Subscriber.objects.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return [(label, counts.get(value, 0)) for value, label in Subscriber.Status.choices]


@dataclass(frozen=True)
class Day:
    day: date
    papers: int
    emails: int


def daily_activity(now: datetime, *, days: int = CHART_DAYS) -> list[Day]:
    """Papers first seen and digests sent on each of the last `days` days (today included)."""
    today = timezone.localdate(now)
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    papers = dict(
        Paper.objects.filter(first_seen__gte=start)
        .annotate(day=TruncDate("first_seen"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    emails = dict(
        Delivery.objects.filter(
            status=Delivery.Status.SENT,
            period__gte=first - timedelta(days=1),  # the (status, period) index narrows it
            sent_at__gte=start,
        )
        .annotate(day=TruncDate("sent_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    return [
        Day(day=day, papers=papers.get(day, 0), emails=emails.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar]
    peak: int
    first_label: str
    last_label: str


def bar_chart(
    title: str, values: list[tuple[date, int]], *, width: int = 420, height: int = 120
) -> Chart:
    """Geometry for an inline SVG bar chart (drawn by the template, no JavaScript)."""
    peak = max((value for _, value in values), default=0)
    slot = width / max(len(values), 1)
    plot = height - 4
    bars = []
    for index, (day, value) in enumerate(values):
        bar_height = plot * value / peak if peak else 0
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 1),
                y=round(height - bar_height, 1),
                width=round(slot * 0.8, 1),
                height=round(bar_height, 1),
                value=value,
                label=f"{day:%a %d %b}: {value}",
            )
        )
    return Chart(
        title=title,
        width=width,
        height=height,
        bars=bars,
        peak=peak,
        first_label=f"{values[0][0]:%d %b}" if values else "",
        last_label=f"{values[-1][0]:%d %b}" if values else "",
    )


def dashboard(now: datetime) -> dict:
    days = daily_activity(now)
    return {
        "subscribers_by_status": subscribers_by_status(),
        "papers_chart": bar_chart("Papers ingested", [(d.day, d.papers) for d in days]),
        "emails_chart": bar_chart("Digests sent", [(d.day, d.emails) for d in days]),
        "ingest_runs": list(ingest_runs_for_lists()[:5]),
        "digest_runs": list(DigestRun.objects.all()[:5]),
        "semantic": semantic_status(),
    }
