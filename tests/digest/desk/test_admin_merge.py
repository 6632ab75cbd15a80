"""Merging papers in the admin asks first (the papers side by side, how alike their titles are, a
warning when they look different) and can be undone; through the admin's real URLs, as a
logged-in superuser."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from digest.ingest import ingest
from digest.models import Paper, PaperAlias, PaperMerge, Rating
from tests.config.test_csp import assert_passes_its_policy
from tests.digest.desk.admin_records import NOW, make_delivery, make_paper, make_subscriber

pytestmark = pytest.mark.django_db

DUMP = Path(__file__).resolve().parents[3] / "samples" / "dumps" / "002_179421400ac29f7f.txt"
SPECDEC = "SpecDec++: Boosting Speculative Decoding via Adaptive Candidate Lengths"
SPECTR = "SpecTr: Fast Speculative Decoding via Optimal Transport"
CHANGELIST = "admin:digest_paper_changelist"


def ask_to_merge(client, papers: list[Paper]):
    """Choose "Merge duplicates" on the selected papers: the confirmation page."""
    return client.post(
        reverse(CHANGELIST),
        {"action": "merge_duplicates", "_selected_action": [paper.pk for paper in papers]},
    )


def confirm_merge(client, papers: list[Paper], keep: Paper):
    """Press the confirmation page's button."""
    return client.post(
        reverse(CHANGELIST),
        {
            "action": "merge_duplicates",
            "_selected_action": [paper.pk for paper in papers],
            "keep": keep.pk,
            "post": "yes",
        },
        follow=True,
    )


def undo(client, merge: PaperMerge):
    return client.post(reverse("admin:digest_papermerge_undo", args=[merge.pk]), follow=True)


def two_different_papers() -> tuple[Paper, Paper]:
    specdec = make_paper(
        SPECDEC,
        arxiv_id="2405.19715",
        authors=["Kaixuan Huang", "Xudong Guo", "Mengdi Wang"],
        upvotes=7,
        seen_count=2,
        sources=["daily-text"],
        first_seen=NOW - timedelta(days=3),
    )
    spectr = make_paper(
        SPECTR,
        arxiv_id="2310.15141",
        authors=["Ziteng Sun", "Ananda Theertha Suresh"],
        upvotes=19,
        seen_count=1,
        sources=["feed"],
        abstract="Speculative decoding with optimal transport, a longer abstract.",
    )
    return specdec, spectr


def test_merge_shows_both_papers_side_by_side_and_changes_nothing(admin_client):
    specdec, spectr = two_different_papers()

    page = ask_to_merge(admin_client, [specdec, spectr])

    assert page.status_code == 200
    html = page.content.decode()
    assert "Merge these papers?" in html
    for text in [
        SPECDEC,
        SPECTR,
        "Kaixuan Huang, Xudong Guo, Mengdi Wang",
        "Ziteng Sun, Ananda Theertha Suresh",
        "2405.19715",
        "2310.15141",
        (NOW - timedelta(days=3)).strftime("%Y-%m-%d %H:%M"),
        "<td>7</td>",
        "<td>19</td>",
        "2 (daily-text)",
        "1 (feed)",
    ]:
        assert text in html, text
    assert 'name="post" value="yes"' in html
    assert f'name="keep" value="{spectr.pk}" checked' in html  # the richer record
    assert Paper.objects.count() == 2
    assert not PaperMerge.objects.exists()
    assert_passes_its_policy(page)


def test_the_confirmation_page_warns_when_the_papers_look_different(admin_client):
    specdec, spectr = two_different_papers()

    html = ask_to_merge(admin_client, [specdec, spectr]).content.decode()

    assert "These look like different papers." in html
    assert "different arXiv ids (2310.15141, 2405.19715)" in html
    assert "Their titles are only 66% alike" in html
    assert "Title similarity: <strong>66%</strong>" in html
    assert 'value="Merge anyway"' in html


def test_the_confirmation_page_does_not_warn_about_true_duplicates(admin_client):
    first = make_paper("Mixture of Experts", sources=["feed"])
    second = make_paper("Mixture-of-Experts!", arxiv_id="2401.00001")

    html = ask_to_merge(admin_client, [first, second]).content.decode()

    assert "These look like different papers" not in html
    assert "Title similarity: <strong>100%</strong>" in html
    assert 'value="Yes, merge them"' in html


def test_a_get_merges_nothing(admin_client):
    specdec, spectr = two_different_papers()
    query = f"action=merge_duplicates&_selected_action={specdec.pk}&_selected_action={spectr.pk}"

    response = admin_client.get(f"{reverse(CHANGELIST)}?{query}&post=yes&keep={spectr.pk}")

    assert response.status_code in {200, 302}
    assert Paper.objects.count() == 2
    assert not PaperMerge.objects.exists()


def test_the_confirm_button_merges_into_the_paper_chosen(admin_client):
    specdec, spectr = two_different_papers()

    response = confirm_merge(admin_client, [specdec, spectr], keep=specdec)

    assert "Merged 1 duplicate(s)" in response.content.decode()
    assert "Undo this merge" in response.content.decode()
    assert list(Paper.objects.values_list("pk", flat=True)) == [specdec.pk]  # not the richest
    merge = PaperMerge.objects.get()
    assert (merge.kept_id, merge.merged_titles) == (specdec.pk, [SPECTR])
    assert round(merge.similarity, 2) == 0.66
    assert merge.merged_by.username == "admin"


def test_undo_restores_the_merged_away_paper_its_digest_items_and_the_kept_fields(admin_client):
    specdec, spectr = two_different_papers()
    earlier = make_paper("SpecTr: fast speculative decoding (workshop version)")
    confirm_merge(admin_client, [spectr, earlier], keep=spectr)  # spectr has an alias of its own
    reader, other_reader = make_subscriber("a@example.com"), make_subscriber("b@example.com")
    both = make_delivery(reader, [spectr, specdec])
    only_spectr = make_delivery(other_reader, [spectr])
    before = {
        paper.pk: Paper.objects.filter(pk=paper.pk).values().get() for paper in (specdec, spectr)
    }
    confirm_merge(admin_client, [specdec, spectr], keep=specdec)
    assert list(Paper.objects.values_list("pk", flat=True)) == [specdec.pk]
    assert list(both.items.values_list("paper_id", flat=True)) == [specdec.pk]
    merge = PaperMerge.objects.get(kept=specdec)

    response = undo(admin_client, merge)

    assert f"Merge #{merge.pk} undone" in response.content.decode()
    after = {paper["id"]: paper for paper in Paper.objects.filter(pk__in=before).values()}
    assert after == before  # both papers exactly as they were, under their own ids
    assert list(both.items.values_list("paper_id", "position")) == [(spectr.pk, 1), (specdec.pk, 2)]
    assert list(only_spectr.items.values_list("paper_id", flat=True)) == [spectr.pk]
    assert dict(PaperAlias.objects.values_list("title_key", "paper_id")) == {
        earlier.title_key: spectr.pk  # the earlier merge's alias is back with its paper
    }
    merge.refresh_from_db()
    assert merge.undone_at is not None and merge.undone_by.username == "admin"


def test_ratings_follow_the_merge_and_come_back_with_the_undo(admin_client):
    specdec, spectr = two_different_papers()
    both, one, other = (make_subscriber(f"{name}@example.com") for name in ("both", "one", "other"))
    Rating.objects.create(subscriber=both, paper=specdec, value=Rating.Value.MORE)
    Rating.objects.create(subscriber=both, paper=spectr, value=Rating.Value.LESS)
    Rating.objects.create(subscriber=one, paper=spectr, value=Rating.Value.LESS)
    Rating.objects.create(subscriber=other, paper=specdec, value=Rating.Value.MORE)
    before = sorted(Rating.objects.values_list("pk", "subscriber_id", "paper_id", "value"))
    confirm_merge(admin_client, [specdec, spectr], keep=specdec)
    assert sorted(Rating.objects.values_list("subscriber__email", "paper_id", "value")) == [
        ("both@example.com", specdec.pk, 1),  # their rating of the kept paper stands
        ("one@example.com", specdec.pk, -1),  # follows the paper it rated
        ("other@example.com", specdec.pk, 1),
    ]

    response = undo(admin_client, PaperMerge.objects.get())

    assert "with 0 digest item(s) and 2 rating(s)" in response.content.decode()
    assert sorted(Rating.objects.values_list("pk", "subscriber_id", "paper_id", "value")) == before


def test_after_undo_a_dump_with_both_papers_keeps_them_apart(admin_client):
    ingest(str(DUMP))
    specdec, spectr = Paper.objects.get(title=SPECDEC), Paper.objects.get(title=SPECTR)
    papers = Paper.objects.count()
    confirm_merge(admin_client, [specdec, spectr], keep=specdec)
    ingest(str(DUMP))
    assert Paper.objects.count() == papers - 1  # the alias files SpecTr under SpecDec++
    assert not Paper.objects.filter(title=SPECTR).exists()

    undo(admin_client, PaperMerge.objects.get())
    run = ingest(str(DUMP))

    assert (run.status, run.created) == ("succeeded", 0)
    assert Paper.objects.count() == papers
    assert Paper.objects.get(title=SPECTR).pk == spectr.pk
    assert Paper.objects.get(title=SPECDEC).pk == specdec.pk
    assert not PaperAlias.objects.exists()


def test_undo_gives_back_the_fields_the_merge_changed_but_not_later_changes(admin_client):
    thin = make_paper("Routing Tokens", upvotes=3, sources=["daily-text"], categories=["cs.LG"])
    rich = make_paper(
        "Routing tokens (v2)",
        arxiv_id="2401.00003",
        abstract="Longer abstract.",
        upvotes=40,
        sources=["feed"],
        first_seen=NOW - timedelta(days=5),
    )
    confirm_merge(admin_client, [thin, rich], keep=thin)
    kept = Paper.objects.get(pk=thin.pk)
    assert (kept.arxiv_id, kept.upvotes, kept.abstract) == ("2401.00003", 40, "Longer abstract.")
    kept.sources = [*kept.sources, "daily-json"]  # seen in another format after the merge
    kept.upvotes = 55  # and upvoted since
    kept.save()

    undo(admin_client, PaperMerge.objects.get())

    kept.refresh_from_db()
    assert kept.arxiv_id is None and kept.abstract == ""
    assert kept.upvotes == 55
    assert kept.sources == ["daily-text", "daily-json"]
    assert kept.first_seen == thin.first_seen
    assert Paper.objects.get(pk=rich.pk).arxiv_id == "2401.00003"


def test_a_merge_is_undone_once(admin_client):
    specdec, spectr = two_different_papers()
    confirm_merge(admin_client, [specdec, spectr], keep=spectr)
    merge = PaperMerge.objects.get()
    undo(admin_client, merge)

    response = undo(admin_client, merge)

    assert f"merge #{merge.pk} was already undone" in response.content.decode()
    assert Paper.objects.count() == 2


def test_undo_waits_for_a_later_merge_of_the_kept_paper_to_be_undone(admin_client):
    first, second, final = make_paper("copy one"), make_paper("copy two"), make_paper("copy 3")
    confirm_merge(admin_client, [first, second], keep=second)
    confirm_merge(admin_client, [second, final], keep=final)
    earlier, later = PaperMerge.objects.order_by("pk")

    refused = undo(admin_client, earlier)

    assert "undo that merge first" in refused.content.decode()
    assert list(Paper.objects.values_list("pk", flat=True)) == [final.pk]
    undo(admin_client, later)
    undo(admin_client, earlier)
    assert sorted(Paper.objects.values_list("pk", flat=True)) == [first.pk, second.pk, final.pk]
    assert not PaperAlias.objects.exists()


def test_the_undo_action_and_the_kept_papers_history(admin_client):
    specdec, spectr = two_different_papers()
    confirm_merge(admin_client, [specdec, spectr], keep=spectr)
    merge = PaperMerge.objects.get()

    history = admin_client.get(reverse("admin:digest_paper_change", args=[spectr.pk]))
    record = admin_client.get(reverse("admin:digest_papermerge_change", args=[merge.pk]))
    get_undo = admin_client.get(reverse("admin:digest_papermerge_undo", args=[merge.pk]))
    assert f"merge #{merge.pk}</a>: {SPECDEC}" in history.content.decode()
    assert "Undo this merge" in record.content.decode()
    assert_passes_its_policy(record)
    assert get_undo.status_code == 405 and Paper.objects.count() == 1

    admin_client.post(
        reverse("admin:digest_papermerge_changelist"),
        {"action": "undo_merges", "_selected_action": [merge.pk]},
    )

    assert Paper.objects.count() == 2


def test_merging_and_undoing_need_the_right_to_change_papers(client, django_user_model):
    specdec, spectr = two_different_papers()
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_paper", "view_papermerge"])
    )
    client.force_login(viewer)

    asked = ask_to_merge(client, [specdec, spectr])

    assert "Merge these papers?" not in asked.content.decode()
    assert Paper.objects.count() == 2
    merge = PaperMerge.objects.create(kept=spectr, similarity=1.0, snapshot={})
    assert client.post(reverse("admin:digest_papermerge_undo", args=[merge.pk])).status_code == 403
    assert PaperMerge.objects.get().undone_at is None
