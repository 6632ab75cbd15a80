import json
import signal
import threading
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError, CommandParser

from digest import tasks
from digest.ingest import ingest_sources
from digest.ingest.sources import FORMATS
from digest.models import IngestRun

REJECTIONS_SHOWN = 20
BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Ingest daily-papers dumps, arXiv feeds or daily-papers JSON from paths, globs, URLs "
        "or - (standard input). Exits non-zero when a source could not be read at all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args, sources: list[str], format: str, as_json: bool, **options) -> None:
        progress = self._show_progress if self.stderr.isatty() else None
        with _terminate_as_exit():
            runs = ingest_sources(sources, format=format, progress=progress)
        tasks.embed_papers_after_commit()  # without a broker, embedded here, in batches
        if as_json:
            self.stdout.write(_json_summary(runs))
        else:
            self.stdout.write(_table(runs))
        failed = [run for run in runs if run.status == IngestRun.Status.FAILED]
        if failed:
            raise CommandError("; ".join(f"{run.source}: {run.error}" for run in failed))

    def _show_progress(self, run: IngestRun, position: int, size: int | None) -> None:
        fraction = min(position / size, 1.0) if size else 1.0
        filled = round(BAR_WIDTH * fraction)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\r{run.source[-40:]} [{bar}] {fraction:4.0%} {run.records:,} papers",
            ending="\n" if fraction >= 1.0 else "",
        )
        self.stderr.flush()


@contextmanager
def _terminate_as_exit():
    """SIGTERM (`kill`, `docker stop`) ends the command like Ctrl-C does, through SystemExit, so
    the run in progress is marked failed ("interrupted") instead of left running. A SIGKILL
    leaves no such chance: the next ingest marks that run failed (runs.fail_stale_runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def exit_on_terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _json_summary(runs: list[IngestRun]) -> str:
    several = len(runs) > 1
    summary = {
        "records": sum(run.records for run in runs),
        "created": sum(run.created for run in runs),
        "updated": sum(run.updated for run in runs),
        "unchanged": sum(run.unchanged for run in runs),
        "rejected": [
            {
                "where": f"{run.source}, {item['where']}" if several else item["where"],
                "why": item["why"],
            }
            for run in runs
            for item in run.rejected
        ],
    }
    failed = [{"source": run.source, "why": run.error} for run in runs if run.error]
    if failed:
        summary["failed"] = failed
    summary["sources"] = [_source_summary(run) for run in runs]  # the table's rows
    return json.dumps(summary, ensure_ascii=False)


def _source_summary(run: IngestRun) -> dict:
    return {
        "source": run.source,
        "format": run.format,
        "status": run.status,
        "records": run.records,
        "created": run.created,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "rejected": run.rejected_count,
        "cut": run.cut_counts,
        "note": run.note,
        "error": run.error,
    }


def _table(runs: list[IngestRun]) -> str:
    columns = ("records", "created", "updated", "unchanged", "rejected")
    width = max([len("source"), *(len(run.source) for run in runs)])
    rows = [f"{'source':<{width}}  {'format':<10}" + "".join(f"{name:>11}" for name in columns)]
    for run in runs:
        counts = (run.records, run.created, run.updated, run.unchanged, run.rejected_count)
        status = f"  failed: {run.error}" if run.error else (f"  ({run.note})" if run.note else "")
        rows.append(
            f"{run.source:<{width}}  {run.format:<10}"
            + "".join(f"{count:>11,}" for count in counts)
            + status
        )
    if len(runs) > 1:
        totals = [sum(getattr(run, name) for run in runs) for name in columns[:-1]]
        totals.append(sum(run.rejected_count for run in runs))
        rows.append(f"{'total':<{width}}  {'':<10}" + "".join(f"{n:>11,}" for n in totals))
    for run in runs:
        if run.cut_counts:
            cuts = ", ".join(f"{name} {count:,}" for name, count in sorted(run.cut_counts.items()))
            rows.append(f"\nCut to their bounds in {run.source} (records): {cuts}")
        if run.rejected_count:
            rows.append(f"\nRejected in {run.source}:")
            rows.extend(
                f"  {item['where']}: {item['why']}" for item in run.rejected[:REJECTIONS_SHOWN]
            )
            if run.rejected_count > REJECTIONS_SHOWN:
                rows.append(f"  … and {run.rejected_count - REJECTIONS_SHOWN:,} more")
    return "\n".join(rows)
