"""Ratings under load: limited per reader and per IP, and however many arrive, one relearn per
reader is queued (digest/web/views.py, digest/tasks.py, digest/feedback/profiles.py)."""

from datetime import timedelta

import kombu.exceptions
import pytest
from django.urls import reverse
from django.utils import timezone

from digest import tasks
from digest.feedback import profiles, ratings
from digest.models import Paper, Rating, ReaderProfile
from subscriptions import links
from subscriptions.models import Subscriber, ThrottleWindow
from tests.config.test_outage import free_port, redis_at  # noqa: F401 (a fixture)
from tests.digest.feedback.rated_records import make_papers, make_reader

pytestmark = pytest.mark.django_db


def rate_url(paper: Paper, reader: Subscriber, direction: str = "more") -> str:
    return ratings.rate_path(paper.pk, direction, ratings.rating_token(reader, paper.pk))


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The relearn tasks handed to the broker (none runs)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.learn_reader_profile, "delay", calls.append)
    return calls


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_a_flood_of_ratings_gets_429_after_the_limit_and_queues_one_relearn(
    client, settings, queued, on_commit
):
    settings.RATING_LIMIT_PER_READER = 5
    reader, papers = make_reader(), make_papers(8)

    with on_commit():
        statuses = [client.post(rate_url(paper, reader)).status_code for paper in papers]

    assert statuses == [200] * 5 + [429] * 3
    assert Rating.objects.count() == 5
    assert queued == [reader.pk]
    over = client.post(rate_url(papers[7], reader))
    assert "Too many ratings" in over.content.decode()
    assert over["Retry-After"] == "3600"


def test_the_queued_relearn_reads_every_rating_of_the_burst(client, queued, on_commit):
    reader, papers = make_reader(), make_papers(6)
    with on_commit():
        for paper in papers:
            client.post(rate_url(paper, reader))

    tasks.learn_reader_profile(queued[0])  # the one task runs

    assert queued == [reader.pk]
    assert ReaderProfile.objects.get(subscriber=reader).ratings_count == 6


def test_a_rating_after_the_relearn_started_queues_the_next(client, queued, on_commit):
    reader, papers = make_reader(), make_papers(3)
    with on_commit():
        client.post(rate_url(papers[0], reader))
    tasks.learn_reader_profile(reader.pk)

    with on_commit():
        client.post(rate_url(papers[1], reader))
        client.post(rate_url(papers[2], reader))

    assert queued == [reader.pk, reader.pk]


def test_each_reader_gets_their_own_relearn(client, queued, on_commit):
    ada, grace = make_reader("ada@example.com"), make_reader("grace@example.com")
    papers = make_papers(2)

    with on_commit():
        for paper in papers:
            client.post(rate_url(paper, ada))
            client.post(rate_url(paper, grace))

    assert sorted(queued) == sorted([ada.pk, grace.pk])


def test_a_relearn_lost_by_the_broker_lapses_and_the_next_rating_queues_another(
    client, queued, on_commit
):
    reader, papers = make_reader(), make_papers(2)
    with on_commit():
        client.post(rate_url(papers[0], reader))
    lapsed = timezone.now() - timedelta(seconds=1)
    ThrottleWindow.objects.filter(key__startswith="claim:relearn:").update(ends_at=lapsed)

    with on_commit():
        client.post(rate_url(papers[1], reader))

    assert queued == [reader.pk, reader.pk]


def test_the_limit_per_ip_counts_every_reader_behind_it(client, settings, queued, on_commit):
    settings.RATING_LIMIT_PER_IP = 3
    ada, grace = make_reader("ada@example.com"), make_reader("grace@example.com")
    papers = make_papers(2)

    with on_commit():
        statuses = [
            client.post(rate_url(paper, reader)).status_code
            for paper in papers
            for reader in (ada, grace)
        ]
        elsewhere = client.post(rate_url(papers[1], grace), REMOTE_ADDR="198.51.100.7")

    assert statuses == [200, 200, 200, 429]
    assert elsewhere.status_code == 200


def test_undo_and_papers_like_these_count_against_the_readers_limit(
    client, settings, queued, on_commit
):
    settings.RATING_LIMIT_PER_READER = 2
    reader, papers = make_reader(), make_papers(1)
    token = links.make_token(reader, "preferences")

    with on_commit():
        seeded = client.post(
            reverse("digest:seed_ratings", kwargs={"token": token}), {"papers": papers[0].title}
        )
        undone = client.post(
            reverse("digest:undo_rating", kwargs={"token": token, "paper_id": papers[0].pk})
        )
        over = client.post(
            reverse("digest:seed_ratings", kwargs={"token": token}), {"papers": papers[0].title}
        )

    assert (seeded.status_code, undone.status_code, over.status_code) == (200, 302, 429)
    assert not Rating.objects.exists()


def test_opening_a_rating_link_is_never_limited(client, settings):
    settings.RATING_LIMIT_PER_READER = 1
    reader, papers = make_reader(), make_papers(1)

    statuses = {client.get(rate_url(papers[0], reader)).status_code for _ in range(4)}

    assert statuses == {200}


def test_with_the_broker_down_each_relearn_runs_in_the_request_and_leaves_no_claim(
    client, monkeypatch, on_commit
):
    def broker_down(_subscriber_id):
        raise kombu.exceptions.OperationalError("connection refused")

    monkeypatch.setattr(tasks.learn_reader_profile, "delay", broker_down)
    reader, papers = make_reader(), make_papers(3)

    for count, paper in enumerate(papers, start=1):
        with on_commit():
            assert client.post(rate_url(paper, reader)).status_code == 200
        assert ReaderProfile.objects.get(subscriber=reader).ratings_count == count
    assert not ThrottleWindow.objects.filter(key__startswith="claim:").exists()


def test_with_redis_down_the_limits_hold_and_the_burst_queues_one_relearn(
    client,
    settings,
    redis_at,  # noqa: F811 (the fixture imported above)
    queued,
    on_commit,
):
    redis_at(f"redis://127.0.0.1:{free_port()}/0")
    settings.RATING_LIMIT_PER_READER = 3
    reader, papers = make_reader(), make_papers(5)

    with on_commit():
        statuses = [client.post(rate_url(paper, reader)).status_code for paper in papers]

    assert statuses == [200, 200, 200, 429, 429]
    assert queued == [reader.pk]


def test_claims_are_kept_per_reader_until_released(db):
    assert profiles.claim_relearn(1) is True
    assert profiles.claim_relearn(1) is False
    assert profiles.claim_relearn(2) is True
    profiles.release_relearn(1)
    assert profiles.claim_relearn(1) is True
