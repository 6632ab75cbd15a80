"""The papers on the editor's desk, through the admin's real URLs, as a staff superuser."""

import re
from datetime import date, timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from digest.ingest import ingest
from digest.models import Delivery, IngestRun, Paper, PaperAlias
from tests.digest.desk.admin_records import (
    FEED,
    NOW,
    SAMPLE_DUMP,
    choice_link,
    listed_titles,
    make_delivery,
    make_paper,
    make_subscriber,
    merge_through_admin,
    run_action,
)

pytestmark = pytest.mark.django_db


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
