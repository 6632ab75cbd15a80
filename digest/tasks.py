"""Celery tasks: the edge where the wings' plain functions are scheduled. No wing imports this
module; views, the admin and commands call it to have work done after commit."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.celery import BROKER_DOWN
from digest.delivery import planning, sending
from digest.feedback import profiles
from digest.ingest import ingest_configured_sources
from digest.matching import vectors
from digest.matching.selection import embed_new_topic_lines, semantic_on
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)


@shared_task
def ingest_sources() -> list[int] | None:
    """Ingest settings.DIGEST_SOURCES; a no-op (None) while another run holds the lock."""
    runs = ingest_configured_sources()
    if runs is not None:
        embed_papers_after_commit()
    return None if runs is None else [run.pk for run in runs]


@shared_task
def embed_papers(everything: bool = False) -> int:
    """Embed the papers without a vector of their current text (all with `everything`), in
    batches; returns how many were embedded (0 with the model off)."""
    if not semantic_on():
        return 0
    return vectors.embed_missing_papers(everything=everything).embedded


@shared_task
def embed_reader_topics(subscriber_id: int) -> int:
    """Embed the reader's topic lines that no reader had typed before; returns how many."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    return 0 if subscriber is None else embed_new_topic_lines([subscriber])


def embed_papers_after_commit() -> None:
    """Have the new papers embedded once the ingest that brought them is committed."""
    transaction.on_commit(lambda: _queue_or_warn(embed_papers))


def embed_topics_after_commit(subscriber_id: int) -> None:
    transaction.on_commit(lambda: _queue_or_warn(embed_reader_topics, subscriber_id))


def _queue_or_warn(task, *args) -> None:
    # Nothing is lost with the broker down: the next run embeds what is missing, and the
    # day's ranking embeds topic lines it finds without a vector.
    try:
        task.delay(*args)
    except BROKER_DOWN as error:
        logger.warning("Broker down, %s not queued: %r", task.name, error)


@shared_task(acks_late=True)
def plan_and_send(now: str | None = None) -> int | None:
    """Beat's tick: plan the deliveries now due, queue them in chunks, and queue again those
    whose worker died. Returns the run's id (None: nobody was due, or more readers were due
    than DIGEST_PLAN_SLICE and plan_slice tasks plan them, a slice each)."""
    moment = parse_datetime(now) if now else timezone.now()
    # A round that cannot be planned is recorded as failed.
    planned = planning.plan_tick(moment, settings.DIGEST_PLAN_SLICE)
    if isinstance(planned, list):
        for subscriber_ids in planned:
            plan_slice.delay(moment.isoformat(), subscriber_ids)
        queue_sends(planning.stalled_deliveries())
        return None
    queue_sends(planning.queue_run(planned) + planning.stalled_deliveries())
    return planned.pk


@shared_task(acks_late=True)
def plan_slice(now: str, subscriber_ids: list[int]) -> int | None:
    """A slice of a tick's readers, planned as a round of its own and queued in chunks. Run
    twice (redelivered, or handed out again by the next tick), it plans nobody twice."""
    run = planning.plan_round(parse_datetime(now), subscriber_ids)
    queue_sends(planning.queue_run(run))
    return run.pk


def queue_sends(delivery_ids: list[int]) -> None:
    """Queue the deliveries in chunks of DIGEST_SEND_CHUNK, then count each run's outcomes."""
    for chunk in planning.chunked(delivery_ids, settings.DIGEST_SEND_CHUNK):
        send_deliveries.delay(chunk)
    planning.refresh_runs()


@shared_task(acks_late=True)
def send_deliveries(delivery_ids: list[int]) -> None:
    """A chunk of deliveries through one ESP connection; transient failures retry one by one."""
    for delivery_id, result in sending.send_deliveries(delivery_ids).items():
        if result.outcome == sending.Outcome.RETRY:
            send_delivery.apply_async((delivery_id,), countdown=result.retry_in)


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_delivery(self, delivery_id: int) -> str:
    """Send one delivery (idempotent: the claim makes a repeat a no-op)."""
    result = sending.send_delivery(delivery_id)
    if result.outcome == sending.Outcome.RETRY:
        raise self.retry(countdown=result.retry_in)
    return str(result.outcome)


@shared_task
def learn_reader_profile(subscriber_id: int) -> int:
    """Relearn a reader's profile from their latest ratings; returns how many it learned from."""
    profiles.release_relearn(subscriber_id)  # before reading: a later rating queues another
    stored = profiles.learn_reader_profile(subscriber_id)
    return stored.ratings_count if stored else 0


def relearn_after_commit(subscriber_id: int) -> None:
    """Have the reader's profile relearned once their ratings are committed: one task however
    many ratings come before it starts (profiles.claim_relearn)."""
    transaction.on_commit(lambda: _queue_relearn(subscriber_id))


def _queue_relearn(subscriber_id: int) -> None:
    if not profiles.claim_relearn(subscriber_id):
        return  # queued already and not started: it will read this rating
    # With the broker down the profile is learned here (its cost is bounded: the latest
    # ratings), so the rating still counts in the next digest.
    try:
        learn_reader_profile.delay(subscriber_id)
    except BROKER_DOWN as error:
        logger.warning(
            "Broker down, profile of #%s learned in the request: %r", subscriber_id, error
        )
        learn_reader_profile(subscriber_id)
