"""The ingest task on a real Celery worker through real Redis, and its lock."""

import time

import pytest

from digest import tasks
from digest.ingest import runs
from digest.models import IngestRun, Paper

ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6


def write_dump(path, *titles: str) -> str:
    path.write_text("".join(f"{title}\n{ABSTRACT}\n" for title in titles), encoding="utf-8")
    return str(path)


def wait_for_finished_run(timeout: float = 60) -> IngestRun | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = IngestRun.objects.filter(finished_at__isnull=False).first()
        if run is not None:
            return run
        time.sleep(0.2)
    return None


def test_ingest_sources_runs_on_a_real_worker_and_stores_the_papers(
    celery_worker_process, tmp_path
):
    dump = write_dump(tmp_path / "today.txt", "Paper Sent Through Redis", "Another Paper")
    celery_worker_process.env["DIGEST_SOURCES"] = dump
    celery_worker_process.start()

    tasks.ingest_sources.delay()

    run = wait_for_finished_run()
    assert run is not None, "".join(celery_worker_process.log[-30:])
    assert (run.source, run.status, run.created) == (dump, IngestRun.Status.SUCCEEDED, 2)
    assert sorted(Paper.objects.values_list("title", flat=True)) == [
        "Another Paper",
        "Paper Sent Through Redis",
    ]


@pytest.mark.django_db
def test_a_second_run_while_one_is_running_does_nothing(settings, tmp_path, monkeypatch):
    settings.DIGEST_SOURCES = [write_dump(tmp_path / "today.txt", "Only Once")]
    real_ingest_sources = runs.ingest_sources
    second_runs = []

    def ingest_while_another_run_starts(sources, **kwargs):
        second_runs.append(tasks.ingest_sources.apply().get())
        return real_ingest_sources(sources, **kwargs)

    monkeypatch.setattr(runs, "ingest_sources", ingest_while_another_run_starts)
    first = tasks.ingest_sources.apply().get()

    assert second_runs == [None]
    assert first == list(IngestRun.objects.values_list("pk", flat=True))
    assert len(first) == 1


@pytest.mark.django_db
def test_the_lock_is_released_after_a_run_even_a_failed_one(settings, tmp_path):
    settings.DIGEST_SOURCES = [str(tmp_path / "missing.txt")]
    assert len(tasks.ingest_sources.apply().get()) == 1
    settings.DIGEST_SOURCES = [write_dump(tmp_path / "today.txt", "Next Day")]
    assert len(tasks.ingest_sources.apply().get()) == 1
    assert Paper.objects.get().title == "Next Day"


def test_the_daily_ingest_is_on_the_beat_schedule_under_the_tasks_real_name(settings):
    entries = settings.CELERY_BEAT_SCHEDULE.values()
    [daily] = [entry for entry in entries if entry["task"] == tasks.ingest_sources.name]
    assert daily["schedule"].hour == {5}
