"""A tick with more readers due than DIGEST_PLAN_SLICE: each slice is a round of its own, planned
by a plan_slice task, with the very papers one round for everyone would have picked."""

import pytest
from django.db import OperationalError

from digest.delivery import planning
from digest.models import DeliveredPaper, Delivery, DigestRun
from subscriptions.models import Subscriber
from tests.digest.delivery.delivery_records import NOW, make_subscriber, sent_to

pytestmark = pytest.mark.django_db

FIELDS = ["paper_id", "position", "score", "pinned", "topic", "matched_terms", "why"]
TOPICS = ["mixture of experts", "quantization", "mixture of experts\nprotein folding", "volcanoes"]


@pytest.fixture
def eager(monkeypatch):
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)  # in-process, even with a broker


@pytest.fixture
def readers(papers) -> list[Subscriber]:
    return [make_subscriber(f"reader{n}@example.com", TOPICS[n % len(TOPICS)]) for n in range(7)]


def stored_papers() -> dict[str, list[list]]:
    items = DeliveredPaper.objects.select_related("delivery__subscriber").order_by("position")
    stored: dict[str, list[list]] = {}
    for item in items:
        row = [getattr(item, name) for name in FIELDS]
        stored.setdefault(item.delivery.subscriber.email, []).append(row)
    return stored


def test_a_tick_plans_its_readers_in_slices_with_the_papers_of_one_round(
    readers, eager, outbox, settings
):
    from digest.tasks import plan_and_send

    expected = {
        s.email: [
            [m.paper_id, n, m.score, m.pinned, m.topic, list(m.matched_terms), m.why]
            for n, m in enumerate(chosen, start=1)
        ]
        for s, chosen in zip(
            readers, planning.select_papers(readers, now=NOW).values(), strict=True
        )
        if chosen
    }
    settings.DIGEST_PLAN_SLICE = 3

    assert plan_and_send.delay(NOW.isoformat()).get() is None  # handed out, not planned here

    runs = DigestRun.objects.order_by("pk")
    assert [run.deliveries.count() for run in runs] == [3, 3, 1]
    assert stored_papers() == expected
    assert sent_to(outbox) == sorted(expected)
    skipped = Delivery.objects.filter(status=Delivery.Status.SKIPPED)
    assert sorted(d.subscriber.email for d in skipped) == ["reader3@example.com"]
    assert sum(run.sent for run in runs) == 6 and all(run.finished_at for run in runs)


def test_a_tick_with_no_more_than_a_slice_due_plans_them_itself(readers, eager, settings):
    from digest.tasks import plan_and_send

    settings.DIGEST_PLAN_SLICE = 7

    run_id = plan_and_send.delay(NOW.isoformat()).get()

    assert list(DigestRun.objects.values_list("pk", flat=True)) == [run_id]
    assert DigestRun.objects.get().deliveries.count() == 7


def test_a_slice_planned_twice_plans_nobody_twice(readers, eager):
    from digest.tasks import plan_slice

    [ids] = planning.due_slices(NOW, 10)
    first = plan_slice(NOW.isoformat(), ids)
    again = plan_slice(NOW.isoformat(), ids)  # redelivered, or handed out by the next tick

    assert first is not None and again is None
    assert Delivery.objects.count() == 7 and DigestRun.objects.count() == 1


def test_a_reader_who_left_after_the_tick_is_not_planned_by_their_slice(readers, eager):
    from digest.tasks import plan_slice

    [ids] = planning.due_slices(NOW, 10)
    Subscriber.objects.filter(email="reader0@example.com").update(
        status=Subscriber.Status.UNSUBSCRIBED
    )

    plan_slice(NOW.isoformat(), ids)

    planned = set(Delivery.objects.values_list("subscriber__email", flat=True))
    assert len(planned) == 6 and "reader0@example.com" not in planned


def test_a_slice_that_cannot_be_planned_fails_alone_and_the_next_tick_plans_it(
    readers, eager, outbox, settings, monkeypatch
):
    from digest.tasks import plan_and_send

    select_papers = planning.select_papers

    def lost_connection_for_reader0(subscribers, *, now):
        if any(s.email == "reader0@example.com" for s in subscribers):
            raise OperationalError("server closed the connection unexpectedly")
        return select_papers(subscribers, now=now)

    monkeypatch.setattr(planning, "select_papers", lost_connection_for_reader0)
    settings.DIGEST_PLAN_SLICE = 3

    plan_and_send.delay(NOW.isoformat())

    failed = DigestRun.objects.get(status=DigestRun.Status.FAILED)
    assert (
        failed.error
        == "planning failed: OperationalError: server closed the connection unexpectedly"
    )
    assert Delivery.objects.count() == 4  # the other two slices, nothing of the failed one
    assert len(sent_to(outbox)) == 4 - 1  # reader3 has nothing relevant

    monkeypatch.setattr(planning, "select_papers", select_papers)
    plan_and_send.delay(NOW.isoformat())  # the next tick: the failed slice's readers are due

    assert Delivery.objects.count() == 7
    assert len(sent_to(outbox)) == 6


@pytest.mark.django_db(transaction=True)
def test_a_rounds_new_topic_lines_are_embedded_and_committed_before_its_transaction(
    readers, monkeypatch
):
    """Slices planned at once share topic lines; upserted inside a round's transaction, their
    rows would stay locked until that round commits, and the other slices would wait for it."""
    from digest.models import TopicEmbedding

    def lost_connection(subscribers, *, now):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(planning, "select_papers", lost_connection)
    TopicEmbedding.objects.all().delete()  # typed while the broker was down: never embedded

    run = planning.plan_round(NOW)

    assert run.status == DigestRun.Status.FAILED and not Delivery.objects.exists()
    assert TopicEmbedding.objects.count() == 4  # every distinct line, kept by its own commit
