"""One ingest run per source: read it in batches, store each batch atomically, and record the
counts and every rejected record on an IngestRun. A run that cannot finish is marked failed;
the batches committed before the failure stay whole."""

import glob
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.conf import settings
from django.core.cache import cache
from django.db import reset_queries
from django.utils import timezone

from digest.ingest.records import PaperRecord, Rejection
from digest.ingest.sources import SourceError, is_url, open_input
from digest.ingest.store import store_papers
from digest.models import IngestRun

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
REJECTIONS_KEPT = 1000
LOCK_KEY = "digest:ingest-sources"
LOCK_SECONDS = 60 * 60  # a crashed worker's lock expires; a healthy run takes seconds

Progress = Callable[[IngestRun, int, int | None], None]  # run, bytes read, total bytes


def ingest(
    source: str,
    *,
    format: str = "auto",
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestRun:
    """Ingest one path (`-`: standard input) or URL; the finished run says how it went."""
    run = IngestRun.objects.create(source=source, format=format)
    try:
        with open_input(source, format=format) as opened:
            run.format, run.note = opened.format, opened.note
            run.save(update_fields=["format", "note"])
            stored_from_input: set[int] = set()
            for batch in _batches(opened.items, batch_size):
                _ingest_batch(run, batch, opened.fingerprint, stored_from_input)
                reset_queries()  # with DEBUG on, the query log would grow with the dump
                if progress:
                    progress(run, opened.position(), opened.size)
            opened.remember()
        run.status = IngestRun.Status.SUCCEEDED
    except SourceError as error:
        run.status, run.error = IngestRun.Status.FAILED, _one_line(str(error))
    except Exception as error:  # recorded on the run, logged with its traceback
        logger.exception("ingest of %s failed", source)
        run.status = IngestRun.Status.FAILED
        run.error = _one_line(f"{type(error).__name__}: {error}")
    except (KeyboardInterrupt, SystemExit):
        run.status, run.error = IngestRun.Status.FAILED, "interrupted"
        _finish(run)
        raise
    _finish(run)
    return run


def _finish(run: IngestRun) -> None:
    run.finished_at = timezone.now()
    run.save()


def ingest_sources(
    sources: Iterable[str], *, format: str = "auto", progress: Progress | None = None
) -> list[IngestRun]:
    """Ingest every source; globs expand to their files, in name order. A glob that matches
    nothing gives a failed run, so a misconfigured source is never silently skipped."""
    runs = []
    for pattern in sources:
        paths = [pattern] if is_url(pattern) or pattern == "-" else sorted(glob.glob(pattern))
        if not paths:
            if glob.has_magic(pattern):
                runs.append(_failed(pattern, "no file matches this pattern"))
                continue
            paths = [pattern]  # a plain path: ingest() reports it missing
        runs.extend(ingest(path, format=format, progress=progress) for path in paths)
    return runs


def ingest_configured_sources() -> list[IngestRun] | None:
    """The daily job: ingest settings.DIGEST_SOURCES, unless another run holds the lock
    (then None: nothing was done)."""
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=LOCK_SECONDS):
        logger.info("ingest_sources is already running; this run does nothing")
        return None
    try:
        return ingest_sources(settings.DIGEST_SOURCES)
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def _ingest_batch(
    run: IngestRun,
    batch: list[PaperRecord | Rejection],
    fingerprint: str,
    stored_from_input: set[int],
) -> None:
    records = []
    for item in batch:
        if isinstance(item, Rejection):
            _reject(run, item)
        elif not item.title_key:
            _reject(run, Rejection(item.where, "title has no letters or digits"))
        else:
            records.append(item)
    counts = store_papers(
        records,
        fingerprint=fingerprint,
        source_format=run.format,
        now=timezone.now(),
        stored_from_input=stored_from_input,
    )
    run.records += len(records)
    run.created += counts.created
    run.updated += counts.updated
    run.unchanged += counts.unchanged
    run.save(
        update_fields=["records", "created", "updated", "unchanged", "rejected", "rejected_count"]
    )


def _reject(run: IngestRun, rejection: Rejection) -> None:
    run.rejected_count += 1
    if len(run.rejected) < REJECTIONS_KEPT:
        run.rejected.append(rejection.as_dict())


def _failed(source: str, reason: str) -> IngestRun:
    now = timezone.now()
    return IngestRun.objects.create(
        source=source, format="auto", status=IngestRun.Status.FAILED, error=reason, finished_at=now
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _batches(items: Iterator, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
