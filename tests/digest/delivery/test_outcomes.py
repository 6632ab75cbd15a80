"""Sent marks (digest/delivery/outcomes.py): one UPDATE marks what the ESP accepted and, in the
same statement, fences the claims about to be handed over."""

from datetime import timedelta

import pytest
from django.utils import timezone

from digest.delivery import claims, planning
from digest.delivery.outcomes import Sent, mark_sent
from digest.models import Delivery
from tests.digest.delivery.delivery_records import NOW, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(papers) -> tuple[list[int], str]:
    for name in ("ada", "grace", "alan", "edsger"):
        make_subscriber(f"{name}@example.com")
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    token = claims.new_token()
    assert claims.claim(ids, timezone.now(), token) == set(ids)
    return ids, token


def sent(delivery_id: int) -> Sent:
    return Sent(delivery_id, timezone.now(), f"<{delivery_id}@example.com>", f"esp-{delivery_id}")


def test_one_statement_marks_the_accepted_sent_and_holds_the_next_claim(claimed):
    (first, second, third, _), token = claimed
    later = timezone.now() + timedelta(minutes=5)

    marked = mark_sent([sent(first)], token, hold=[second, third], held_at=later)

    assert (marked.ours, marked.taken_over, marked.held) == ({first}, set(), {second, third})
    rows = {row.pk: row for row in Delivery.objects.all()}
    assert (rows[first].status, rows[first].message_id) == ("sent", f"<{first}@example.com>")
    assert rows[first].esp_message_id == f"esp-{first}" and rows[first].error == ""
    assert {rows[pk].status for pk in (second, third)} == {"sending"}
    assert {rows[pk].claimed_at for pk in (second, third)} == {later}
    assert rows[first].claimed_at != later


def test_a_claim_taken_over_is_not_held_and_an_accepted_one_is_marked_all_the_same(claimed):
    (first, second, third, fourth), token = claimed
    Delivery.objects.filter(pk__in=[first, third]).update(claim_token="another-worker")

    marked = mark_sent(
        [sent(first), sent(second)], token, hold=[third, fourth], held_at=timezone.now()
    )

    assert marked.ours == {second} and marked.taken_over == {first}
    assert marked.held == {fourth}
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[pk] for pk in (first, second, third, fourth)] == [
        "sent",
        "sent",
        "sending",
        "sending",
    ]


def test_a_delivery_both_accepted_and_to_hold_is_only_marked_sent(claimed):
    (first, *_), token = claimed

    marked = mark_sent([sent(first)], token, hold=[first], held_at=timezone.now())

    assert (marked.ours, marked.held) == ({first}, set())
    assert Delivery.objects.get(pk=first).status == "sent"


def test_holding_alone_is_the_fence(claimed):
    (first, second, *_), token = claimed
    Delivery.objects.filter(pk=second).update(claim_token="another-worker")

    assert claims.hold([first, second], token, timezone.now()) == {first}
    assert mark_sent([], token).held == set()
