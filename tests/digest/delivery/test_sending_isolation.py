"""One reader's failure stays theirs; a round that fails says so (digest/sending.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.urls import reverse
from django.utils.html import escape

from digest import matching
from digest.delivery import messages, planning, rounds, sending
from digest.models import DeliveredPaper, Delivery, DigestRun, Paper
from subscriptions.models import Subscriber
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday


def make_paper(title: str, abstract: str = "") -> Paper:
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract=abstract,
        first_seen=NOW - timedelta(hours=2),
        last_seen=NOW,
    )


def make_subscriber(email: str, topics: str = "mixture of experts") -> Subscriber:
    return Subscriber.objects.create(
        email=email, topics=topics, status=Subscriber.Status.ACTIVE, send_hour=7
    )


@pytest.fixture
def readers() -> list[Subscriber]:
    make_paper(
        "Sparse Mixture of Experts at Scale",
        "We train a mixture of experts model. It routes tokens to experts.",
    )
    make_paper("Quantization of Large Models", "We quantize weights to four bits.")
    return [
        make_subscriber("ada@example.com"),
        make_subscriber("bob@example.com", "quantization"),
        make_subscriber("cy@example.com", "mixture of experts\nquantization"),
        make_subscriber("dee@example.com", "volcanology"),
    ]


@pytest.fixture
def ranking_breaks_on(monkeypatch):
    """Make ranking raise whenever the given reader is among those ranked, as a topic that trips
    a bug in matching would: the one vectorized pass over all readers raises."""
    poisoned: set[str] = set()

    def select_papers(subscribers, *, now):
        if any(s.email in poisoned for s in subscribers):
            raise ValueError("The truth value of an array with more than one element is ambiguous")
        return matching.select_papers(subscribers, now=now)

    monkeypatch.setattr(planning, "select_papers", select_papers)
    return poisoned


def emails_by_reader(outbox) -> dict[str, list]:
    by_reader: dict[str, list] = {}
    for message in read_outbox(outbox):
        by_reader.setdefault(str(message["To"]), []).append(message)
    return by_reader


def test_a_reader_whose_ranking_raises_fails_alone_and_the_others_get_their_digest(
    readers, ranking_breaks_on, outbox, capsys
):
    ranking_breaks_on.add("bob@example.com")

    call_command("send_digests", "--now", NOW.isoformat())

    got = emails_by_reader(outbox)
    assert sorted(got) == ["ada@example.com", "cy@example.com"]
    assert "Sparse Mixture of Experts at Scale" in got["ada@example.com"][0]["Subject"]
    assert "Quantization of Large Models" in (
        got["cy@example.com"][0].get_body(("plain",)).get_content()
    )
    bob = Delivery.objects.get(subscriber__email="bob@example.com")
    assert bob.status == Delivery.Status.FAILED
    assert bob.error.startswith("ranking failed: ValueError: The truth value")
    assert Delivery.objects.get(subscriber__email="dee@example.com").status == "skipped"
    run = DigestRun.objects.get()
    assert (run.status, run.sent, run.failed, run.skipped) == ("finished", 2, 1, 1)
    out = capsys.readouterr().out
    assert "ranking failed: ValueError" in out and "failed 1" in out


def test_a_failed_reader_is_listed_with_the_reason_in_the_admin(
    readers, ranking_breaks_on, admin_client
):
    ranking_breaks_on.add("bob@example.com")
    rounds.run_digest_round(NOW)
    bob = Delivery.objects.get(subscriber__email="bob@example.com")

    listing = admin_client.get(
        reverse("admin:digest_delivery_changelist"), {"status__exact": "failed"}
    ).content.decode()
    detail = admin_client.get(
        reverse("admin:digest_delivery_change", args=[bob.pk])
    ).content.decode()

    assert "bob@example.com" in listing and "ranking failed: ValueError" in listing
    assert "ada@example.com" not in listing
    assert escape(bob.error) in detail


def test_a_reader_failed_in_ranking_is_ranked_again_when_retried(
    readers, ranking_breaks_on, outbox
):
    ranking_breaks_on.add("bob@example.com")
    rounds.run_digest_round(NOW)
    ranking_breaks_on.clear()  # the bug is fixed and deployed
    bob = Delivery.objects.get(subscriber__email="bob@example.com")

    assert planning.retry_failed([bob.pk]) == 1
    sending.send_deliveries([bob.pk])

    [email] = emails_by_reader(outbox)["bob@example.com"]
    assert "Quantization of Large Models" in email["Subject"]
    assert list(DeliveredPaper.objects.filter(delivery=bob).values_list("paper__title", flat=True))
    bob.refresh_from_db()
    assert (bob.status, bob.error) == (Delivery.Status.SENT, "")


def test_a_reader_whose_digest_cannot_be_composed_fails_alone(readers, monkeypatch, outbox):
    real_compose = messages.compose_digest

    def compose_digest(subscriber, matches, **kwargs):
        if subscriber.email == "ada@example.com":
            raise KeyError("paper_block")
        return real_compose(subscriber, matches, **kwargs)

    monkeypatch.setattr(messages, "compose_digest", compose_digest)

    run = rounds.run_digest_round(NOW)

    assert sorted(emails_by_reader(outbox)) == ["bob@example.com", "cy@example.com"]
    ada = Delivery.objects.get(subscriber__email="ada@example.com")
    assert ada.status == Delivery.Status.FAILED
    assert ada.error == "composing failed: KeyError: 'paper_block'"
    assert (run.sent, run.failed) == (2, 1)


def test_a_dry_run_reports_a_digest_that_cannot_be_composed(readers, monkeypatch, capsys):
    def compose_digest(subscriber, matches, **kwargs):
        raise KeyError("paper_block")

    monkeypatch.setattr(messages, "compose_digest", compose_digest)

    call_command("send_digests", "--now", NOW.isoformat(), "--dry-run")

    out = capsys.readouterr().out
    assert "composing failed: KeyError" in out and "would send 0" in out and "failed 3" in out
    assert not Delivery.objects.exists()


def test_a_round_that_cannot_be_planned_is_recorded_failed_and_the_command_exits_non_zero(
    readers, monkeypatch, outbox, admin_client
):
    def select_papers(subscribers, *, now):
        raise OperationalError("could not receive data from server: Connection reset by peer")

    monkeypatch.setattr(planning, "select_papers", select_papers)

    with pytest.raises(CommandError, match="round at 2026-03-02T09:30:00.* failed: planning"):
        call_command("send_digests", "--now", NOW.isoformat())

    assert read_outbox(outbox) == []
    run = DigestRun.objects.get()
    assert run.status == DigestRun.Status.FAILED and run.finished_at is not None
    assert run.error == (
        "planning failed: OperationalError: could not receive data from server: "
        "Connection reset by peer"
    )
    assert not Delivery.objects.exists()  # nothing half-planned: the next round plans them
    dashboard = admin_client.get(reverse("admin:index")).content.decode()
    assert '<td class="status-failed">Failed</td>' in dashboard
    assert escape(run.error) in dashboard


def test_a_round_whose_ranking_fails_for_every_reader_is_failed(readers, ranking_breaks_on, outbox):
    ranking_breaks_on.update(s.email for s in readers)

    with pytest.raises(CommandError, match="ranking failed for every reader due \\(4\\)"):
        call_command("send_digests", "--now", NOW.isoformat())

    assert read_outbox(outbox) == []
    run = DigestRun.objects.get()
    assert (run.status, run.failed) == (DigestRun.Status.FAILED, 4)
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.FAILED}


def test_a_failed_round_still_sends_what_earlier_rounds_left(readers, monkeypatch, outbox):
    planning.plan_deliveries(NOW)  # planned, then the process died before sending

    def select_papers(subscribers, *, now):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(planning, "select_papers", select_papers)
    make_subscriber("eve@example.com")  # due in the next round, which cannot be planned

    with pytest.raises(CommandError, match="planning failed"):
        call_command("send_digests", "--now", (NOW + timedelta(minutes=5)).isoformat())

    assert sorted(emails_by_reader(outbox)) == [
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
