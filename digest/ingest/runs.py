"""One ingest run per source: read it in batches, store each batch atomically, and record the
counts and every rejected record on an IngestRun. A run that cannot finish is marked failed;
the batches committed before the failure stay whole. A run whose process was killed before
it could say so is marked failed by the next ingest (or `send_digests`): `fail_stale_runs`."""

import glob
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

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
# A running run with no sign of life for this long is stale even when its process cannot be
# checked (it ran on another host): every stored batch is a sign of life.
STALE_AFTER = timedelta(seconds=LOCK_SECONDS)

Progress = Callable[[IngestRun, int, int | None], None]  # run, bytes read, total bytes


def ingest(
    source: str,
    *,
    format: str = "auto",
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestRun:
    """Ingest one path (`-`: standard input) or URL; the finished run says how it went."""
    now = timezone.now()
    fail_stale_runs(now)
    run = IngestRun.objects.create(
        source=source, format=format, host=socket.gethostname(), pid=os.getpid(), heartbeat_at=now
    )
    try:
        with open_input(source, format=format) as opened:
            run.format, run.note = opened.format, opened.note
            run.save(update_fields=["format", "note"])
            stored_from_input: set[int] = set()
            for batch in _batches(opened.items, batch_size):
                _count_cut_lines(run, opened.lines_cut())
                _ingest_batch(run, batch, opened.fingerprint, stored_from_input)
                reset_queries()  # with DEBUG on, the query log would grow with the dump
                if progress:
                    progress(run, opened.position(), opened.size)
            if _count_cut_lines(run, opened.lines_cut()):
                run.save(update_fields=["cut_counts"])
            if refusal := opened.refusal():  # the records read before it are kept
                raise SourceError(refusal)
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


def fail_stale_runs(now: datetime, *, stale_after: timedelta = STALE_AFTER) -> list[IngestRun]:
    """Mark failed, with the reason, every run left "running" by a process that died without
    finishing it (SIGKILL, out of memory, a lost machine): its process is gone from this host,
    or it has shown no sign of life for `stale_after`. Returns the runs it marked."""
    host = socket.gethostname()
    marked = []
    for run in IngestRun.objects.filter(status=IngestRun.Status.RUNNING).defer("rejected"):
        last_sign_of_life = run.heartbeat_at or run.started_at
        if run.host == host and run.pid and not _process_exists(run.pid):
            reason = (
                f"interrupted: its process ({run.pid} on {host}) ended without finishing the run"
            )
        elif last_sign_of_life < now - stale_after:
            reason = (
                f"interrupted: no sign of life since {last_sign_of_life:%Y-%m-%d %H:%M:%S %Z} "
                "(its process was killed or lost)"
            )
        else:
            continue
        # Conditional: a run that finished meanwhile keeps its own outcome.
        if IngestRun.objects.filter(pk=run.pk, status=IngestRun.Status.RUNNING).update(
            status=IngestRun.Status.FAILED, error=reason, finished_at=now
        ):
            logger.warning("ingest run %s of %s: %s", run.pk, run.source, reason)
            run.status, run.error, run.finished_at = IngestRun.Status.FAILED, reason, now
            marked.append(run)
    return marked


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # a killed process its parent has not reaped yet is a zombie: dead all the same
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


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
            for name in item.cuts:
                run.cut_counts[name] = run.cut_counts.get(name, 0) + 1
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
    run.heartbeat_at = timezone.now()
    run.save(
        update_fields=[
            *("records", "created", "updated", "unchanged", "rejected", "rejected_count"),
            *("cut_counts", "heartbeat_at"),
        ]
    )


def _count_cut_lines(run: IngestRun, lines_cut: int) -> bool:
    """Bring the run's count of lines cut up to the reader's; True when it changed."""
    if lines_cut == run.cut_counts.get("lines", 0):
        return False
    run.cut_counts["lines"] = lines_cut
    return True


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
