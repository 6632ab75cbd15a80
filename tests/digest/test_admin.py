"""The editor's desk, through the admin's real URLs, as a logged-in staff superuser."""

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from config.celery import app as celery_app
from digest import composing
from digest.ingest import ingest
from digest.models import DeliveredPaper, Delivery, DigestRun, IngestRun, Paper, PaperAlias
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db

NOW = timezone.now()
SAMPLE_DUMP = Path(__file__).resolve().parents[2] / "samples" / "dumps" / "000_5d60b27bee63c9e0.txt"
FEED = Path(__file__).resolve().parent / "ingest" / "fixtures" / "arxiv-rss2.xml"


@pytest.fixture
def tasks_in_process(monkeypatch):
    """Run Celery tasks inside the request, as without a broker, to see what they did."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def make_paper(title: str, **fields) -> Paper:
    fields.setdefault("first_seen", NOW)
    fields.setdefault("last_seen", fields["first_seen"])
    return Paper.objects.create(title=title, title_key=title.lower(), **fields)


def make_subscriber(email: str, **fields) -> Subscriber:
    return Subscriber.objects.create(email=email, **fields)


def make_delivery(subscriber: Subscriber, papers: list[Paper], **fields) -> Delivery:
    fields.setdefault("period", date(2026, 11, 20))
    fields.setdefault("status", Delivery.Status.SENT)
    delivery = Delivery.objects.create(subscriber=subscriber, **fields)
    for position, paper in enumerate(papers, start=1):
        DeliveredPaper.objects.create(delivery=delivery, paper=paper, position=position, score=1.0)
    return delivery


def run_action(client, model: str, action: str, objects) -> object:
    return client.post(
        reverse(f"admin:digest_{model}_changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )


def merge_through_admin(client, papers) -> object:
    """Choose "Merge duplicates", then press the confirmation page's button (keeping the paper
    it proposes, the richest)."""
    selected = [paper.pk for paper in papers]
    form = {"action": "merge_duplicates", "_selected_action": selected}
    page = client.post(reverse("admin:digest_paper_changelist"), form)
    keep = page.context["preview"].kept.pk
    return client.post(
        reverse("admin:digest_paper_changelist"), {**form, "keep": keep, "post": "yes"}, follow=True
    )


def choice_link(response, filter_title: str, choice: str) -> str:
    """The query string of a filter's choice, as the sidebar links it."""
    [spec] = [spec for spec in response.context["cl"].filter_specs if spec.title == filter_title]
    [link] = [
        c["query_string"] for c in spec.choices(response.context["cl"]) if c["display"] == choice
    ]
    return link


def listed_titles(response) -> set[str]:
    return {paper.title for paper in response.context["cl"].result_list}


# Papers


def test_paper_search_looks_in_title_abstract_authors_and_arxiv_id(admin_client):
    make_paper("Sparse Mixture of Experts")
    make_paper("Diffusion", abstract="We denoise scores of images.")
    make_paper("Scaling Laws", authors=["Jared Kaplan", "Sam McCandlish"])
    make_paper("Attention", arxiv_id="1706.03762")
    url = reverse("admin:digest_paper_changelist")

    assert listed_titles(admin_client.get(url, {"q": "mixture"})) == {"Sparse Mixture of Experts"}
    assert listed_titles(admin_client.get(url, {"q": "denoise"})) == {"Diffusion"}
    assert listed_titles(admin_client.get(url, {"q": "kaplan"})) == {"Scaling Laws"}
    assert listed_titles(admin_client.get(url, {"q": "1706.03762"})) == {"Attention"}


def test_paper_filters_by_source_hidden_pinned_upvotes_and_first_seen(admin_client):
    IngestRun.objects.create(source="feed.xml", format="feed")
    IngestRun.objects.create(source="missing.txt", format="auto", status="failed")
    make_paper("From a feed", sources=["feed"], upvotes=3)
    make_paper("From a dump", sources=["daily-text"], hidden=True)
    make_paper("Pinned", sources=["daily-text"], pinned=True, upvotes=1)
    make_paper("Old", first_seen=NOW - timedelta(days=40))
    url = reverse("admin:digest_paper_changelist")

    assert listed_titles(admin_client.get(url, {"source": "feed"})) == {"From a feed"}
    assert listed_titles(admin_client.get(url, {"hidden__exact": "1"})) == {"From a dump"}
    assert listed_titles(admin_client.get(url, {"pinned__exact": "1"})) == {"Pinned"}
    assert listed_titles(admin_client.get(url, {"has_upvotes": "yes"})) == {"From a feed", "Pinned"}
    past_week = choice_link(admin_client.get(url), "first seen", "Past 7 days")
    assert listed_titles(admin_client.get(url + past_week)) == {
        "From a feed",
        "From a dump",
        "Pinned",
    }
    sidebar = admin_client.get(url).content
    assert b'href="?source=feed"' in sidebar
    assert b"source=auto" not in sidebar


def test_paper_list_sorts_by_upvotes_and_first_seen(admin_client):
    make_paper("Few", upvotes=2, first_seen=NOW - timedelta(days=1))
    make_paper("Many", upvotes=50, first_seen=NOW - timedelta(days=3))
    make_paper("Some", upvotes=9, first_seen=NOW - timedelta(days=2))
    url = reverse("admin:digest_paper_changelist")
    upvotes_column = PaperColumns.index("upvotes") + 1
    seen_column = PaperColumns.index("first_seen") + 1

    by_upvotes = admin_client.get(url, {"o": f"-{upvotes_column}"}).context["cl"].result_list
    by_first_seen = admin_client.get(url, {"o": f"{seen_column}"}).context["cl"].result_list

    assert [paper.title for paper in by_upvotes] == ["Many", "Some", "Few"]
    assert [paper.title for paper in by_first_seen] == ["Many", "Some", "Few"]


PaperColumns = admin.site._registry[Paper].list_display


def test_hide_unhide_pin_and_unpin_actions(admin_client):
    first, second = make_paper("First"), make_paper("Second")

    run_action(admin_client, "paper", "hide", [first, second])
    assert set(Paper.objects.values_list("hidden", flat=True)) == {True}
    run_action(admin_client, "paper", "unhide", [first])
    assert Paper.objects.get(pk=first.pk).hidden is False
    assert Paper.objects.get(pk=second.pk).hidden is True

    response = run_action(admin_client, "paper", "pin", [second])
    assert "1 paper pinned." in response.content.decode()
    assert list(Paper.objects.filter(pinned=True)) == [second]
    run_action(admin_client, "paper", "unpin", [second])
    assert not Paper.objects.filter(pinned=True).exists()


def test_editing_a_paper_records_the_fields_the_editor_changed(admin_client):
    paper = make_paper("A Tpyo in the Title", abstract="Fine.", authors=["Ada Lovelace"], upvotes=4)
    form = {
        "title": "A Typo in the Title",
        "abstract": "Fine.",
        "authors": "Ada Lovelace\nCharles Babbage",
        "author_count": "",
        "url": "",
        "pdf_url": "",
        "published_on": "",
        "upvotes": "4",
        "categories": "",
        "pinned": "on",
    }

    response = admin_client.post(reverse("admin:digest_paper_change", args=[paper.pk]), form)

    assert response.status_code == 302
    paper.refresh_from_db()
    assert paper.title == "A Typo in the Title"
    assert paper.authors == ["Ada Lovelace", "Charles Babbage"]
    assert paper.pinned is True
    assert paper.edited_fields == ["authors", "title"]  # pinning is curation, not an edit


def test_a_later_ingest_leaves_the_editors_changes_alone(admin_client, tmp_path):
    ingest(str(SAMPLE_DUMP))
    next_day = tmp_path / "next-day.txt"  # the same papers in another dump
    next_day.write_text(SAMPLE_DUMP.read_text() + "\n")
    edited, untouched = Paper.objects.exclude(abstract="").order_by("pk")[:2]
    form = paper_form(edited, title="An Editor's Better Title", abstract="A clearer abstract.")
    admin_client.post(reverse("admin:digest_paper_change", args=[edited.pk]), form)
    Paper.objects.filter(pk=untouched.pk).update(abstract="Cut short behind ingest's back.")

    ingest(str(next_day))

    edited.refresh_from_db()
    assert (edited.title, edited.abstract) == ("An Editor's Better Title", "A clearer abstract.")
    assert Paper.objects.get(pk=untouched.pk).abstract == untouched.abstract  # ingest restored it


def paper_form(paper: Paper, **changes) -> dict:
    form = {
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": "\n".join(paper.authors),
        "author_count": paper.author_count or "",
        "url": paper.url,
        "pdf_url": paper.pdf_url,
        "published_on": paper.published_on or "",
        "upvotes": paper.upvotes,
        "categories": "\n".join(paper.categories),
    }
    return {**form, **changes}


def test_forget_edits_hands_the_fields_back_to_ingest(admin_client):
    paper = make_paper("Edited", edited_fields=["title"])

    run_action(admin_client, "paper", "forget_edits", [paper])

    paper.refresh_from_db()
    assert paper.edited_fields == []


def test_merge_duplicates_keeps_the_richer_record_and_moves_its_history(admin_client):
    thin = make_paper(
        "Mixture of Experts",
        sources=["feed"],
        upvotes=30,
        seen_count=2,
        first_seen=NOW - timedelta(days=2),
        hidden=True,
    )
    rich = make_paper(
        "Mixture-of-Experts!",
        arxiv_id="2401.00001",
        abstract="A long abstract about routing tokens.",
        authors=["Noam Shazeer"],
        sources=["daily-text"],
        upvotes=12,
        seen_count=1,
        first_seen=NOW - timedelta(days=1),
    )
    other = make_paper("Unrelated")
    reader = make_subscriber("reader@example.com")
    delivery = make_delivery(reader, [thin, other])

    response = merge_through_admin(admin_client, [thin, rich])

    assert "Merged 1 duplicate(s)" in response.content.decode()
    assert not Paper.objects.filter(pk=thin.pk).exists()
    kept = Paper.objects.get(pk=rich.pk)
    assert kept.abstract == "A long abstract about routing tokens."
    assert kept.upvotes == 30
    assert kept.seen_count == 3
    assert kept.first_seen == thin.first_seen
    assert sorted(kept.sources) == ["daily-text", "feed"]
    assert kept.hidden is True
    assert list(delivery.items.values_list("paper_id", flat=True)) == [kept.pk, other.pk]
    entry = LogEntry.objects.get(object_id=str(kept.pk))
    assert "Mixture of Experts" in entry.get_change_message()


def test_merge_keeps_one_row_when_a_digest_listed_both_duplicates(admin_client):
    first = make_paper("Twin", arxiv_id="2401.00002", abstract="Longer abstract, richer.")
    second = make_paper("Twin (v2)")
    delivery = make_delivery(make_subscriber("a@example.com"), [second, first])

    merge_through_admin(admin_client, [first, second])

    assert list(delivery.items.values_list("paper_id", flat=True)) == [first.pk]
    assert Paper.objects.count() == 1


def test_a_merged_duplicate_does_not_come_back_on_the_next_ingest(admin_client, tmp_path):
    ingest(str(SAMPLE_DUMP))  # the text dumps carry no arXiv ids: titles are all we have
    from_dump = Paper.objects.get(title__startswith="Grokfast")
    from_feed = make_paper(
        "Grokfast: Accelerated Grokking by Amplifying Slow Gradients (v2)",
        arxiv_id="2405.20233",
        abstract=from_dump.abstract + " Revised.",
        authors=["Jaerin Lee"],
        url="https://arxiv.org/abs/2405.20233",
        sources=["feed"],
    )
    papers = Paper.objects.count()
    merge_through_admin(admin_client, [from_dump, from_feed])
    next_day = tmp_path / "next-day.txt"  # the same papers in another dump
    next_day.write_text(SAMPLE_DUMP.read_text() + "\n")

    run = ingest(str(next_day))

    assert (run.status, run.created) == ("succeeded", 0)
    assert Paper.objects.count() == papers - 1
    assert not Paper.objects.filter(title_key=from_dump.title_key).exists()
    kept = Paper.objects.get(pk=from_feed.pk)
    assert kept.seen_count == 3  # the feed, the first dump, the next day's dump
    assert sorted(kept.sources) == ["daily-text", "feed"]
    assert kept.title == from_feed.title  # the kept paper's own fields are not the dump's


def test_a_paper_merged_away_with_its_arxiv_id_does_not_come_back_from_a_feed(
    admin_client, tmp_path
):
    ingest(str(FEED))
    posted_twice = Paper.objects.get(arxiv_id="2401.11111")
    kept = make_paper(
        "Sparse Mixture-of-Experts Routing at Scale",
        arxiv_id="2401.99999",
        abstract=posted_twice.abstract + " With the journal version's proofs.",
        authors=["Ada Lovelace"],
        url="https://arxiv.org/abs/2401.99999",
        pdf_url="https://arxiv.org/pdf/2401.99999",
        published_on=date(2024, 1, 20),
        categories=["cs.LG"],
        sources=["feed"],
    )
    merge_through_admin(admin_client, [posted_twice, kept])
    assert not Paper.objects.filter(pk=posted_twice.pk).exists()
    # The next day's feed lists the removed id under a title no paper or alias has.
    next_day = tmp_path / "next-day.xml"
    next_day.write_text(
        FEED.read_text().replace("Routing at Scale</title>", "Routing at Scale, Revisited</title>")
    )

    run = ingest(str(next_day))

    assert (run.status, run.created) == ("succeeded", 0)
    assert not Paper.objects.filter(arxiv_id="2401.11111").exists()
    kept.refresh_from_db()
    assert (kept.arxiv_id, kept.title) == (
        "2401.99999",
        "Sparse Mixture-of-Experts Routing at Scale",
    )
    assert kept.seen_count == 3


def test_merging_a_paper_that_absorbed_duplicates_before_keeps_their_aliases_on_the_final_paper(
    admin_client,
):
    first = make_paper("first copy")
    second = make_paper("second copy", abstract="Short.")
    final = make_paper("final copy", abstract="The longest abstract of the three.")
    merge_through_admin(admin_client, [first, second])

    merge_through_admin(admin_client, [second, final])

    aliases = dict(PaperAlias.objects.values_list("title_key", "paper_id"))
    assert aliases == {"first copy": final.pk, "second copy": final.pk}
    assert list(Paper.objects.values_list("pk", flat=True)) == [final.pk]


def test_merge_needs_two_papers(admin_client):
    paper = make_paper("Alone")

    response = run_action(admin_client, "paper", "merge_duplicates", [paper])

    assert "Select at least two papers" in response.content.decode()
    assert Paper.objects.filter(pk=paper.pk).exists()


def test_paper_list_shows_how_many_sent_digests_included_it(admin_client):
    paper = make_paper("Popular")
    make_delivery(make_subscriber("a@example.com"), [paper])
    make_delivery(make_subscriber("b@example.com"), [paper])
    make_delivery(make_subscriber("c@example.com"), [paper], status=Delivery.Status.FAILED)

    response = admin_client.get(reverse("admin:digest_paper_changelist"))

    [row] = response.context["cl"].result_list
    assert row.digest_count == 2
    assert b'<td class="field-digest_count">2</td>' in response.content


def test_paper_changelist_queries_are_bounded_for_500_rows(
    admin_client, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[Paper], "list_per_page", 500)
    Paper.objects.bulk_create(
        Paper(title=f"Paper {n}", title_key=f"paper {n}", first_seen=NOW, last_seen=NOW)
        for n in range(500)
    )
    reader = make_subscriber("a@example.com")
    make_delivery(reader, list(Paper.objects.all()[:20]))

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("admin:digest_paper_changelist"))

    assert len(response.context["cl"].result_list) == 500


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
    )

    listing = admin_client.get(reverse("admin:digest_ingestrun_changelist"))
    detail = admin_client.get(reverse("admin:digest_ingestrun_change", args=[run.pk]))

    assert b'<td class="field-rejected_count">2</td>' in listing.content
    page = detail.content.decode()
    assert "<td>line 14</td><td>no title</td>" in page
    assert "abstract &lt;script&gt;alert(1)&lt;/script&gt;" in page
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


# The digest preview


def test_preview_shows_the_digest_exactly_as_the_email_would_be(admin_client):
    make_paper(
        "Sparse Mixture of Experts for Language Models",
        abstract="We route tokens to a sparse mixture of experts & beat dense models.",
        arxiv_id="2401.04088",
        upvotes=40,
    )
    reader = make_subscriber(
        "ada@example.com", status=Subscriber.Status.ACTIVE, topics="mixture of experts"
    )

    response = admin_client.get(reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]))

    email = response.context["email"]
    expected = composing.preview_digest(reader)
    assert email.subject == expected.subject
    assert email.text == expected.body
    assert email.html == expected.alternatives[0][0]
    page = response.content.decode()
    assert f'<strong class="preview-subject">{escape(expected.subject)}</strong>' in page
    assert f'sandbox srcdoc="{escape(email.html)}"' in page
    assert "Sparse Mixture of Experts for Language Models" in email.html
    assert not Delivery.objects.exists()  # a preview records nothing


def test_preview_says_so_when_nothing_is_relevant(admin_client):
    make_paper("Protein Folding", abstract="Proteins fold.")
    reader = make_subscriber("ada@example.com", status=Subscriber.Status.ACTIVE, topics="compilers")

    response = admin_client.get(reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]))

    assert "Nothing relevant for ada@example.com right now" in response.content.decode()


def test_subscriber_pages_link_to_the_preview(admin_client):
    reader = make_subscriber("ada@example.com")
    preview = reverse("admin:subscriptions_subscriber_preview", args=[reader.pk]).encode()

    listing = admin_client.get(reverse("admin:subscriptions_subscriber_changelist"))
    detail = admin_client.get(reverse("admin:subscriptions_subscriber_change", args=[reader.pk]))

    assert preview in listing.content
    assert preview in detail.content


# Nobody but staff


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    return client


def test_non_staff_users_get_nothing(reader_client, settings):
    settings.DIGEST_SOURCES = [str(SAMPLE_DUMP)]
    paper = make_paper("Paper")
    subscriber = make_subscriber("ada@example.com", status=Subscriber.Status.ACTIVE)
    delivery = make_delivery(subscriber, [paper], status=Delivery.Status.FAILED)
    gets = [
        reverse("admin:index"),
        reverse("admin:digest_paper_changelist"),
        reverse("admin:digest_paper_change", args=[paper.pk]),
        reverse("admin:digest_ingestrun_changelist"),
        reverse("admin:digest_digestrun_changelist"),
        reverse("admin:digest_delivery_changelist"),
        reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]),
        reverse("admin:django_celery_beat_periodictask_changelist"),
    ]
    responses = [reader_client.get(url) for url in gets] + [
        reader_client.post(reverse("admin:digest_ingestrun_run")),
        run_action(reader_client, "paper", "hide", [paper]),
        run_action(reader_client, "paper", "merge_duplicates", [paper, make_paper("Twin")]),
        run_action(reader_client, "delivery", "retry_failed", [delivery]),
    ]

    for response in responses:
        assert (
            response.redirect_chain[-1][0].startswith(reverse("admin:login"))
            if hasattr(response, "redirect_chain")
            else response["Location"].startswith(reverse("admin:login"))
        )
    assert Paper.objects.filter(hidden=True).count() == 0
    assert Paper.objects.count() == 2
    assert not IngestRun.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED


def test_staff_without_permissions_cannot_preview_or_act(client, django_user_model):
    staff = django_user_model.objects.create_user("intern", password="x", is_staff=True)
    client.force_login(staff)
    paper = make_paper("Paper")
    subscriber = make_subscriber("ada@example.com")

    preview = client.get(reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk]))
    run_now = client.post(reverse("admin:digest_ingestrun_run"))
    hide = run_action(client, "paper", "hide", [paper])

    assert preview.status_code == 403
    assert run_now.status_code == 403
    assert hide.status_code == 403
    assert not IngestRun.objects.exists()
    assert not Paper.objects.filter(hidden=True).exists()


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
    for n in range(2):
        make_delivery(make_subscriber(f"r{n}@example.com"), [paper], sent_at=NOW)
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


def test_admin_is_titled_paperboy_desk(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "<title>Dashboard | Paperboy desk</title>" in page
    assert '<a href="/admin/">Paperboy desk</a>' in page
    assert "Django administration" not in page


def test_paper_title_is_edited_in_a_box_that_shows_all_of_it(admin_client):
    paper = make_paper(("A Very Long Title " * 10 + "That Ends Here").strip())
    url = reverse("admin:digest_paper_change", args=[paper.pk])

    page = admin_client.get(url).content.decode()

    [(attributes, shown)] = re.findall(
        r'<textarea ([^>]*name="title"[^>]*)>(.*?)</textarea>', page, re.S
    )
    assert shown.strip() == paper.title
    assert 'class="vLargeTextField"' in attributes  # the admin's full-width box
    assert not re.search(r'<input [^>]*name="title"', page)
