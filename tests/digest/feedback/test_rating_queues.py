"""Consent emails and relearning have queues of their own, so a flood of ratings never delays a
reader's confirmation; through the real broker, a burst of ratings queues one relearn
(config/settings.py CELERY_TASK_ROUTES, digest/tasks.py)."""

import time
from datetime import UTC, datetime

import pytest
import redis
from django.test import Client

from config.celery import app as celery_app
from digest import tasks
from digest.feedback import ratings
from digest.models import Rating, ReaderProfile
from subscriptions import tasks as consent_tasks
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.digest.feedback.rated_records import make_papers, make_reader


def queue_of(task) -> str:
    return celery_app.amqp.router.route({}, task.name)["queue"].name


def test_consent_emails_relearning_and_digests_each_have_their_queue():
    assert queue_of(consent_tasks.send_consent_email) == "consent"
    assert queue_of(consent_tasks.send_owed_emails) == "consent"
    assert queue_of(tasks.learn_reader_profile) == "feedback"
    assert queue_of(tasks.send_deliveries) == "celery"
    assert {queue.name for queue in celery_app.amqp.queues.values()} >= {
        "celery",
        "consent",
        "feedback",
    }


@pytest.mark.services
def test_a_burst_of_ratings_puts_one_relearn_on_the_broker(services, transactional_db, settings):
    broker = redis.Redis.from_url(services)
    settings.RATING_LIMIT_PER_READER = 1000
    reader, papers = make_reader("ada@example.com"), make_papers(40)
    broker.flushdb()  # saving a reader queues the embedding of their topics: not the burst's
    client = Client()

    for paper in papers:
        token = ratings.rating_token(reader, paper.pk)
        assert client.post(ratings.rate_path(paper.pk, "more", token)).status_code == 200

    assert Rating.objects.filter(subscriber=reader).count() == 40
    assert broker.llen("feedback") == 1
    assert broker.llen("celery") == 0
    broker.flushdb()


@pytest.mark.services
def test_a_confirmation_does_not_wait_behind_queued_relearns(celery_worker_process, outbox):
    readers = [make_reader(f"r{n}@example.com") for n in range(150)]
    [paper] = make_papers(1)
    Rating.objects.bulk_create(
        Rating(subscriber=reader, paper=paper, value=Rating.Value.MORE) for reader in readers
    )
    for reader in readers:  # queued straight, as 150 readers' bursts would queue them
        tasks.learn_reader_profile.delay(reader.pk)
    newcomer = make_reader("new.reader@example.org", status=Subscriber.Status.PENDING)
    consent_tasks.send_consent_email.delay(newcomer.pk, "confirm")

    celery_worker_process.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        not read_outbox(outbox) or ReaderProfile.objects.count() < len(readers)
    ):
        time.sleep(0.2)

    [email_file] = outbox.glob("*.eml")
    assert read_outbox(outbox)[0]["To"] == "new.reader@example.org"
    assert ReaderProfile.objects.count() == len(readers), "".join(celery_worker_process.log[-30:])
    sent_at = datetime.fromtimestamp(email_file.stat().st_mtime, tz=UTC)
    learned_before = ReaderProfile.objects.filter(learned_at__lt=sent_at).count()
    assert learned_before < 10  # not behind the 150 relearns queued before it
