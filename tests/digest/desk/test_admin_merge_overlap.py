"""Two editors merging overlapping papers (issue 22, item 9): the second merge, whose papers the
first one took away, answers with a clear message and merges nothing, never a 500. Through the
admin's real URLs, as a logged-in superuser."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from digest.desk import merges
from digest.desk.admin import papers as papers_admin
from digest.models import Paper, PaperMerge
from tests.digest.desk.admin_records import make_paper

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:digest_paper_changelist"


def ask_to_merge(client, papers: list[Paper]):
    form = {"action": "merge_duplicates", "_selected_action": [paper.pk for paper in papers]}
    return client.post(reverse(CHANGELIST), form)


def confirm_merge(client, papers: list[Paper], keep: Paper):
    form = {
        "action": "merge_duplicates",
        "_selected_action": [paper.pk for paper in papers],
        "keep": keep.pk,
        "post": "yes",
    }
    return client.post(reverse(CHANGELIST), form, follow=True)


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def copies() -> list[Paper]:
    return [
        make_paper(f"Sparse Mixture of Experts at Scale{suffix}", abstract="A mixture of experts.")
        for suffix in ("", ".", " (v2)", " [pdf]")
    ]


def test_confirming_a_merge_of_a_paper_merged_away_meanwhile_says_where_it_went(
    admin_client, copies
):
    first, second, third, _ = copies
    assert ask_to_merge(admin_client, [first, second]).status_code == 200
    assert ask_to_merge(admin_client, [second, third]).status_code == 200  # another editor
    confirm_merge(admin_client, [first, second], keep=first)

    response = confirm_merge(admin_client, [second, third], keep=third)

    assert response.status_code == 200
    merge = PaperMerge.objects.get()
    assert shown_messages(response) == [
        f"Nothing was merged: paper #{second.pk} was merged into paper #{first.pk} "
        f"(merge #{merge.pk}) since you chose it. Choose the papers again."
    ]
    assert Paper.objects.filter(pk__in=[first.pk, third.pk]).count() == 2


def test_the_rest_of_a_selection_is_not_merged_without_the_paper_that_went(admin_client, copies):
    first, second, third, fourth = copies
    confirm_merge(admin_client, [first, second], keep=first)

    response = confirm_merge(admin_client, [second, third, fourth], keep=third)

    assert response.status_code == 200
    assert "Nothing was merged" in shown_messages(response)[0]
    assert PaperMerge.objects.count() == 1 and Paper.objects.count() == 3


def test_a_merge_committed_while_this_one_was_on_its_way_answers_a_message_not_a_500(
    admin_client, copies, monkeypatch
):
    first, second, third, _ = copies

    def other_editor_first(ids, **kwargs):
        merges.merge_papers([first.pk, second.pk], keep=first.pk)  # commits just before ours
        return merges.merge_papers(ids, **kwargs)

    monkeypatch.setattr(papers_admin, "merge_papers", other_editor_first)

    response = confirm_merge(admin_client, [second, third], keep=third)

    assert response.status_code == 200
    [message] = shown_messages(response)
    assert message.startswith(f"Nothing was merged: paper #{second.pk} was merged into paper")
    assert PaperMerge.objects.count() == 1
    assert set(Paper.objects.values_list("pk", flat=True)) == {first.pk, third.pk, copies[3].pk}
