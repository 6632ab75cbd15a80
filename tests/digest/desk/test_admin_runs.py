"""Ingest runs, digest runs and deliveries on the editor's desk."""

from datetime import date

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from digest.models import Delivery, DigestRun, IngestRun, Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.digest.desk.admin_records import (
    NOW,
    SAMPLE_DUMP,
    choice_link,
    make_delivery,
    make_paper,
    make_subscriber,
    run_action,
)

pytestmark = pytest.mark.django_db


# Ingest runs


def test_ingest_run_shows_its_counts_and_every_rejected_record(admin_client):
    run = IngestRun.objects.create(
        source="/data/dump.txt",
        format="daily-text",
        status=IngestRun.Status.SUCCEEDED,
        records=12,
        created=9,
        updated=1,
        unchanged=0,
        rejected_count=2,
        rejected=[
            {"where": "line 14", "why": "no title"},
            {"where": "line 40", "why": "abstract <script>alert(1)</script>"},
        ],
        cut_counts={"abstract": 1, "links": 3},
    )

    listing = admin_client.get(reverse("admin:digest_ingestrun_changelist"))
    detail = admin_client.get(reverse("admin:digest_ingestrun_change", args=[run.pk]))

    assert b'<td class="field-rejected_count">2</td>' in listing.content
    page = detail.content.decode()
    assert "<td>line 14</td><td>no title</td>" in page
    assert "abstract &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;links&quot;: 3" in page  # records whose fields were cut to their bounds
    assert 'name="records"' not in page  # read-only


def test_run_an_ingest_now_button_starts_an_ingest_of_the_configured_sources(
    admin_client, tasks_in_process, settings
):
    settings.DIGEST_SOURCES = [str(SAMPLE_DUMP)]
    listing = admin_client.get(reverse("admin:digest_ingestrun_changelist"))
    assert reverse("admin:digest_ingestrun_run").encode() in listing.content

    response = admin_client.post(reverse("admin:digest_ingestrun_run"), follow=True)

    assert "An ingest of 1 configured source(s) was started" in response.content.decode()
    [run] = IngestRun.objects.all()  # Celery runs the task in-process without a broker
    assert run.source == str(SAMPLE_DUMP)
    assert run.created > 0
    assert Paper.objects.count() == run.created


def test_run_an_ingest_now_needs_a_post(admin_client):
    response = admin_client.get(reverse("admin:digest_ingestrun_run"))

    assert response.status_code == 405
    assert not IngestRun.objects.exists()


def test_ingest_run_changelist_queries_are_bounded_for_500_rows(
    admin_client, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[IngestRun], "list_per_page", 500)
    IngestRun.objects.bulk_create(
        IngestRun(
            source=f"dump-{n}.txt", format="daily-text", rejected=[{"where": "x", "why": "y"}]
        )
        for n in range(500)
    )

    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("admin:digest_ingestrun_changelist"))

    assert len(response.context["cl"].result_list) == 500


# Digest runs and deliveries


def make_run(subscribers_by_status: dict[str, list[Subscriber]], paper: Paper) -> DigestRun:
    run = DigestRun.objects.create(now=NOW)
    for status, subscribers in subscribers_by_status.items():
        for subscriber in subscribers:
            make_delivery(
                subscriber,
                [paper],
                run=run,
                status=status,
                error="SMTPDataError: 554 rejected" if status == Delivery.Status.FAILED else "",
            )
    return run


def test_digest_run_shows_outcomes_with_reasons(admin_client):
    paper = make_paper("Paper")
    run = make_run(
        {
            Delivery.Status.SENT: [make_subscriber("a@example.com")],
            Delivery.Status.FAILED: [make_subscriber("b@example.com"), make_subscriber("c@x.org")],
        },
        paper,
    )
    DigestRun.objects.filter(pk=run.pk).update(planned=3, sent=1, failed=2)

    listing = admin_client.get(reverse("admin:digest_digestrun_changelist"))
    detail = admin_client.get(reverse("admin:digest_digestrun_change", args=[run.pk]))

    failed_url = deliveries_filtered(run__id__exact=run.pk, status__exact="failed")
    assert f'<a href="{failed_url}">2</a>'.encode() in listing.content
    page = detail.content.decode()
    assert "SMTPDataError: 554 rejected" in page
    assert "<td>2</td><td>SMTPDataError: 554 rejected</td>" in page
    failed_list = admin_client.get(failed_url.replace("&amp;", "&"))
    assert {d.subscriber.email for d in failed_list.context["cl"].result_list} == {
        "b@example.com",
        "c@x.org",
    }


def deliveries_filtered(**filters) -> str:
    query = "&amp;".join(f"{name}={value}" for name, value in filters.items())
    return f"{reverse('admin:digest_delivery_changelist')}?{query}"


def test_deliveries_filter_by_status_and_date(admin_client):
    paper = make_paper("Paper")
    make_delivery(make_subscriber("old@example.com"), [paper], period=date(2020, 1, 1))
    make_delivery(
        make_subscriber("failed@example.com"),
        [paper],
        status=Delivery.Status.FAILED,
        period=timezone.localdate(),
    )
    url = reverse("admin:digest_delivery_changelist")

    failed = admin_client.get(url, {"status__exact": "failed"})
    this_year = choice_link(admin_client.get(url), "period", "This year")
    recent = admin_client.get(url + this_year)

    assert {d.subscriber.email for d in failed.context["cl"].result_list} == {"failed@example.com"}
    assert {d.subscriber.email for d in recent.context["cl"].result_list} == {"failed@example.com"}


def test_retry_failed_deliveries_sends_them_once(admin_client, tasks_in_process, outbox):
    paper = make_paper("Sparse Mixture of Experts", abstract="Routing tokens to experts.")
    active = {"status": Subscriber.Status.ACTIVE, "topics": "mixture of experts"}
    failed = make_delivery(
        make_subscriber("failed@example.com", **active),
        [paper],
        status=Delivery.Status.FAILED,
        attempts=5,
        error="SMTPServerDisconnected",
    )
    sent = make_delivery(make_subscriber("sent@example.com", **active), [paper])

    response = run_action(admin_client, "delivery", "retry_failed", [failed, sent])
    again = run_action(admin_client, "delivery", "retry_failed", [failed, sent])

    assert "1 failed deliveries queued to send again." in response.content.decode()
    assert "0 failed deliveries queued to send again." in again.content.decode()
    assert [message["To"] for message in read_outbox(outbox)] == ["failed@example.com"]
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.SENT
    assert failed.error == ""


def test_retry_the_failed_deliveries_of_a_run(admin_client, tasks_in_process, outbox):
    paper = make_paper("Sparse Mixture of Experts")
    active = {"status": Subscriber.Status.ACTIVE, "topics": "mixture of experts"}
    run = make_run(
        {
            Delivery.Status.SENT: [make_subscriber("sent@example.com", **active)],
            Delivery.Status.FAILED: [make_subscriber("failed@example.com", **active)],
        },
        paper,
    )

    DigestRun.objects.filter(pk=run.pk).update(planned=2, sent=1, failed=1, finished_at=NOW)

    run_action(admin_client, "digestrun", "retry_failed", [run])

    assert [message["To"] for message in read_outbox(outbox)] == ["failed@example.com"]
    assert not Delivery.objects.filter(status=Delivery.Status.FAILED).exists()
    run.refresh_from_db()
    assert (run.sent, run.failed) == (2, 0)
    assert run.finished_at is not None


def test_delivery_shows_the_papers_it_listed(admin_client):
    delivery = make_delivery(make_subscriber("a@example.com"), [make_paper("Listed Paper")])

    response = admin_client.get(reverse("admin:digest_delivery_change", args=[delivery.pk]))

    assert "Listed Paper" in response.content.decode()


def test_delivery_and_digest_run_changelists_queries_are_bounded_for_500_rows(
    admin_client, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[Delivery], "list_per_page", 500)
    monkeypatch.setattr(admin.site._registry[DigestRun], "list_per_page", 500)
    runs = DigestRun.objects.bulk_create(DigestRun(now=NOW, failed=n % 2) for n in range(500))
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n}@example.com") for n in range(500)
    )
    Delivery.objects.bulk_create(
        Delivery(subscriber=s, run=r, period=date(2026, 11, 20), status=Delivery.Status.SENT)
        for s, r in zip(subscribers, runs, strict=True)
    )

    with django_assert_max_num_queries(6):
        deliveries = admin_client.get(reverse("admin:digest_delivery_changelist"))
    with django_assert_max_num_queries(6):
        runs_page = admin_client.get(reverse("admin:digest_digestrun_changelist"))

    assert len(deliveries.context["cl"].result_list) == 500
    assert len(runs_page.context["cl"].result_list) == 500
