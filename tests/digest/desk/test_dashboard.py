"""The dashboard on the admin index: who subscribes, the last runs, and daily charts."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from digest.models import Delivery, DigestRun, IngestRun, Paper
from subscriptions.models import Subscriber
from tests.digest.desk.admin_records import (
    NOW,
    make_delivery,
    make_paper,
    make_subscriber,
)

pytestmark = pytest.mark.django_db


# The dashboard on the admin index


def test_dashboard_shows_subscribers_by_status_and_the_last_runs(admin_client):
    for n in range(3):
        make_subscriber(f"active{n}@example.com", status=Subscriber.Status.ACTIVE)
    make_subscriber("bounced@example.com", status=Subscriber.Status.BOUNCED)
    IngestRun.objects.create(
        source="/data/today.txt", format="daily-text", status="failed", rejected_count=7
    )
    DigestRun.objects.create(now=NOW, planned=40, sent=37, skipped=1, failed=2)

    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "<strong>3</strong>Active" in page
    assert "<strong>1</strong>Bounced" in page
    assert "/data/today.txt" in page
    assert "<td>7</td>" in page
    assert "<td>40</td><td>37</td><td>1</td>" in page
    assert '<td class="failed">2</td>' in page
    assert 'id="content-main"' in page  # the stock app list is still there


def chart(page: str, label: str) -> str:
    start = page.index(f'aria-label="{label}"')
    return page[start : page.index("</svg>", start)]


def test_dashboard_charts_papers_ingested_and_digests_sent_per_day(admin_client):
    today = timezone.localtime(NOW)
    for n in range(3):
        make_paper(f"Today {n}", first_seen=NOW)
    make_paper("Two days ago", first_seen=NOW - timedelta(days=2))
    make_paper("Too old to chart", first_seen=NOW - timedelta(days=20))
    paper = Paper.objects.first()
    for n in range(2):  # the period narrows the query: a digest sent today is of about today
        make_delivery(
            make_subscriber(f"r{n}@example.com"), [paper], sent_at=NOW, period=today.date()
        )
    make_delivery(make_subscriber("f@example.com"), [paper], status=Delivery.Status.FAILED)

    page = admin_client.get(reverse("admin:index")).content.decode()

    papers_chart = chart(page, "Papers ingested per day")
    emails_chart = chart(page, "Digests sent per day")
    two_days_ago = today - timedelta(days=2)
    assert papers_chart.count("<rect") == 14
    assert f"<title>{today:%a %d %b}: 3</title>" in papers_chart
    assert f"<title>{two_days_ago:%a %d %b}: 1</title>" in papers_chart
    assert f"<title>{today:%a %d %b}: 2</title>" in emails_chart
    assert "Papers ingested, last 14 days (peak 3)" in page
    assert "Digests sent, last 14 days (peak 2)" in page


def test_dashboard_runs_a_few_queries_whatever_the_data(
    admin_client, django_assert_max_num_queries
):
    papers = Paper.objects.bulk_create(
        Paper(title=f"P{n}", title_key=f"p{n}", first_seen=NOW - timedelta(hours=n), last_seen=NOW)
        for n in range(300)
    )
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"r{n}@example.com", status=Subscriber.Status.ACTIVE) for n in range(300)
    )
    Delivery.objects.bulk_create(
        Delivery(subscriber=s, period=date(2026, 11, 20), status="sent", sent_at=NOW)
        for s in subscribers
    )
    IngestRun.objects.bulk_create(IngestRun(source=f"s{n}", format="x") for n in range(20))
    DigestRun.objects.bulk_create(DigestRun(now=NOW) for _ in range(20))
    assert len(papers) == 300

    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("admin:index"))

    assert "<strong>300</strong>Active" in response.content.decode()
