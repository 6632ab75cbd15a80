"""Papers ticked in the sign-up's preview travel through double opt-in: stored as numbers with
the pending reader (or the waiting SignUpRequest), recorded as ratings when the reader confirms,
and listed on the confirmation page."""

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from digest.models import Paper, Rating, ReaderProfile
from subscriptions.forms import MAX_LIKED_AT_SIGN_UP, SignUpForm, liked_paper_ids
from subscriptions.models import Subscriber
from tests.subscriptions.conftest import links_in, sign_up_data
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db


def paper(title: str, **fields) -> Paper:
    now = timezone.now()
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=f"{title}: what we found, and how.",
        first_seen=now,
        last_seen=now,
        **fields,
    )


def sign_up_ticking(client, likes: list, **overrides):
    data = sign_up_data(**overrides)
    data["like"] = [str(value) for value in likes]
    return client.post(reverse("subscriptions:sign_up"), data)


def confirm(client, outbox, django_capture_on_commit_callbacks):
    token = [token for purpose, token in links_in(outbox) if purpose == "confirm"][-1]
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("subscriptions:confirm", kwargs={"token": token}))


def test_ticks_wait_with_the_pending_reader_and_become_ratings_on_confirm(
    client, outbox, django_capture_on_commit_callbacks
):
    experts = paper("Sparse mixture of experts at scale")
    folding = paper("Protein folding with diffusion")
    hidden = paper("A paper the editors hid", hidden=True)

    sign_up_ticking(client, [experts.pk, folding.pk, hidden.pk, 987654, "x"])

    reader = Subscriber.objects.get()
    assert reader.liked_at_sign_up == [experts.pk, folding.pk, hidden.pk, 987654]
    assert not Rating.objects.exists()  # nothing counts before the owner confirms

    page = confirm(client, outbox, django_capture_on_commit_callbacks).content.decode()

    ratings = Rating.objects.filter(subscriber=reader)
    assert sorted(ratings.values_list("paper_id", "value", "source")) == sorted(
        [
            (experts.pk, Rating.Value.MORE, Rating.Source.SIGN_UP),
            (folding.pk, Rating.Value.MORE, Rating.Source.SIGN_UP),
        ]
    )
    assert ReaderProfile.objects.get(subscriber=reader).ratings_count == 2
    assert "Papers you ticked" in page
    assert "Sparse mixture of experts at scale" in page and "Protein folding" in page
    assert "A paper the editors hid" not in page


def test_a_waiting_sign_up_request_carries_its_own_ticks(
    client, outbox, django_capture_on_commit_callbacks
):
    first, second = paper("First ticked paper"), paper("Second ticked paper")
    sign_up_ticking(client, [first.pk])
    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(minutes=61))
    sign_up_ticking(client, [second.pk])  # the address is pending: this request waits

    confirm(client, outbox, django_capture_on_commit_callbacks)  # the latest link

    reader = Subscriber.objects.get()
    assert list(Rating.objects.filter(subscriber=reader).values_list("paper_id", flat=True)) == [
        second.pk
    ]


def test_a_sign_up_without_ticks_confirms_as_before(
    client, outbox, django_capture_on_commit_callbacks
):
    response = client.post(reverse("subscriptions:sign_up"), sign_up_data())
    assert response.status_code == 302

    page = confirm(client, outbox, django_capture_on_commit_callbacks).content.decode()

    assert "You're subscribed" in page and "Papers you ticked" not in page
    assert not Rating.objects.exists() and not ReaderProfile.objects.exists()


def test_a_reader_rating_before_confirming_keeps_their_own_rating(
    client, outbox, django_capture_on_commit_callbacks
):
    ticked = paper("Ticked then rated down")
    sign_up_ticking(client, [ticked.pk])
    reader = Subscriber.objects.get()
    Rating.objects.create(subscriber=reader, paper=ticked, value=Rating.Value.LESS)

    confirm(client, outbox, django_capture_on_commit_callbacks)

    assert Rating.objects.get().value == Rating.Value.LESS


def test_ticks_are_bounded_and_only_positive_integers_count():
    values = ["3", "3", " 4 ", "-5", "0", "1e3", "٣", "", "x", "99999999999999999999", *"6789"]
    values += [str(n) for n in range(10, 30)]

    assert liked_paper_ids(values) == [3, 4, 6, 7, 8, 9, 10, 11, 12, 13]


@given(st.lists(st.one_of(any_text, st.integers().map(str)), max_size=40))
def test_any_like_values_give_at_most_ten_distinct_positive_ids(values):
    ids = liked_paper_ids(values)

    assert len(ids) <= MAX_LIKED_AT_SIGN_UP and len(set(ids)) == len(ids)
    assert all(isinstance(i, int) and 0 < i < 2**63 for i in ids)
    assert set(ids) <= {int(v) for v in values if v.strip().isascii() and v.strip().isdigit()}


@given(st.lists(any_text, max_size=30))
def test_any_like_values_never_make_the_sign_up_form_refuse(values):
    data = QueryDict(mutable=True)
    data.update(sign_up_data())
    data.setlist("like", values)
    form = SignUpForm(data)

    assert form.is_valid(), form.errors
    assert form.liked_paper_ids() == liked_paper_ids(values)
