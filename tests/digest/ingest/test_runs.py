import json
import os
import random
import re
import socket
import subprocess
import tempfile
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest
from django.db import IntegrityError
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest import ingest, ingest_sources, store
from digest.ingest.daily_text import parse_daily_text
from digest.ingest.records import PaperRecord
from digest.ingest.runs import STALE_AFTER, fail_stale_runs
from digest.ingest.sources import binary_start
from digest.models import IngestRun, Paper
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db

DUMPS = Path(__file__).resolve().parents[3] / "samples" / "dumps"
ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6


def dump(*titles: str) -> str:
    return "".join(f"{title}\n{ABSTRACT}\n" for title in titles)


def write(tmp_path: Path, content: str | bytes, name: str = "dump.txt") -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return str(path)


def test_the_sample_dumps_give_456_papers_and_a_finished_run_each():
    runs = ingest_sources([str(DUMPS / "*.txt")])
    assert [run.status for run in runs] == [IngestRun.Status.SUCCEEDED] * 5
    assert all(run.finished_at and run.format == "daily-text" for run in runs)
    assert sum(run.records for run in runs) == 555
    assert sum(run.created for run in runs) == Paper.objects.count() == 456
    assert sum(run.created + run.updated + run.unchanged for run in runs) == 555
    assert Paper.objects.filter(author_count__isnull=False).count() == 33


def test_same_dump_twice_creates_no_new_papers_and_reports_everything_unchanged():
    ingest_sources([str(DUMPS / "*.txt")])
    seen = dict(Paper.objects.values_list("title_key", "seen_count"))
    runs = ingest_sources([str(DUMPS / "*.txt")])
    assert [(run.created, run.updated) for run in runs] == [(0, 0)] * 5
    assert sum(run.unchanged for run in runs) == 555
    assert dict(Paper.objects.values_list("title_key", "seen_count")) == seen
    assert max(seen.values()) > 1  # papers in several dumps were counted once per dump


def test_empty_file_fails_with_a_clear_reason(tmp_path):
    run = ingest(write(tmp_path, ""))
    assert (run.status, run.error) == (IngestRun.Status.FAILED, "the input is empty")


def test_whitespace_only_file_counts_as_empty(tmp_path):
    assert ingest(write(tmp_path, "\n  \r\n\n")).error == "the input is empty"


def test_binary_file_fails_as_not_text(tmp_path):
    run = ingest(write(tmp_path, bytes(range(256)) * 10, "image.png"))
    assert run.status == IngestRun.Status.FAILED
    assert run.error == "not text: binary data from byte 0 (line 1) on (NUL bytes)"
    assert Paper.objects.count() == 0


def test_missing_file_fails_with_its_name(tmp_path):
    run = ingest(str(tmp_path / "nope.txt"))
    assert run.error == f"no such file: {tmp_path / 'nope.txt'}"


def test_glob_matching_nothing_is_a_failed_run_not_silence(tmp_path):
    [run] = ingest_sources([str(tmp_path / "*.txt")])
    assert (run.status, run.error) == (IngestRun.Status.FAILED, "no file matches this pattern")


def test_latin1_dump_is_decoded(tmp_path):
    run = ingest(write(tmp_path, dump("Déjà Vu in Résumé Parsing").encode("latin-1")))
    assert run.records == 1
    assert Paper.objects.get().title == "Déjà Vu in Résumé Parsing"


def test_utf8_bom_is_not_part_of_the_first_title(tmp_path):
    ingest(write(tmp_path, "\ufeff" + dump("First Title", "Second Title")))
    assert sorted(Paper.objects.values_list("title", flat=True)) == ["First Title", "Second Title"]


def test_crlf_line_ends_leave_no_carriage_returns(tmp_path):
    run = ingest(write(tmp_path, dump("First Title", "Second Title").replace("\n", "\r\n")))
    assert run.records == 2
    assert not Paper.objects.filter(title__contains="\r").exists()
    assert not Paper.objects.filter(abstract__contains="\r").exists()


def test_unpaired_lines_are_recorded_and_the_good_records_beside_them_kept(tmp_path):
    content = (
        dump("Good Paper One")
        + "A Title Whose Abstract Went Missing\n"
        + dump("Good Paper Two")
        + "Truncated Last Title\n"
    )
    run = ingest(write(tmp_path, content))
    assert run.status == IngestRun.Status.SUCCEEDED
    assert (run.records, run.created, run.rejected_count) == (2, 2, 2)
    assert run.rejected == [
        {"where": "line 3", "why": "title with no abstract (another title follows)"},
        {"where": "line 6", "why": "title with no abstract at the end (truncated dump?)"},
    ]
    assert sorted(Paper.objects.values_list("title", flat=True)) == [
        "Good Paper One",
        "Good Paper Two",
    ]


def test_html_in_a_title_is_stored_as_text_and_escaped_where_shown(tmp_path, admin_client):
    ingest(write(tmp_path, dump("<script>alert('x')</script> Attention")))
    assert Paper.objects.get().title == "<script>alert('x')</script> Attention"
    for url in ("/admin/digest/paper/", "/"):
        page = admin_client.get(url).content.decode()
        assert "&lt;script&gt;alert(" in page, url
        assert "<script>alert(" not in page, url


def test_the_parser_streams_an_endless_dump():
    def endless():
        number = 0
        while True:
            number += 1
            yield f"Paper {number}"
            yield ABSTRACT

    first = list(islice(parse_daily_text(endless()), 3))
    assert [item.title for item in first] == ["Paper 1", "Paper 2", "Paper 3"]


def test_a_dump_is_written_in_batches_as_it_is_read(tmp_path):
    seen = []
    path = write(tmp_path, dump(*(f"Paper {n}" for n in range(25))))
    run = ingest(path, batch_size=10, progress=lambda run, at, size: seen.append((run.records, at)))
    assert [records for records, _ in seen] == [10, 20, 25]
    assert seen[0][1] < seen[1][1] <= Path(path).stat().st_size
    assert run.created == 25


def test_a_crash_mid_file_keeps_committed_batches_whole_and_marks_the_run_failed(
    tmp_path, monkeypatch
):
    real_insert = store.insert_instances
    calls = []

    def insert_then_crash_on_the_second_batch(model, papers):
        calls.append(len(papers))
        real_insert(model, papers)  # written inside the batch's transaction
        if len(calls) == 2:
            raise IntegrityError("disk on fire")

    monkeypatch.setattr(store, "insert_instances", insert_then_crash_on_the_second_batch)
    run = ingest(write(tmp_path, dump(*(f"Paper {n}" for n in range(25)))), batch_size=10)
    assert run.status == IngestRun.Status.FAILED
    assert run.error == "IntegrityError: disk on fire"
    assert run.finished_at is not None
    assert (run.records, run.created) == (10, 10)
    assert sorted(Paper.objects.values_list("title", flat=True)) == sorted(
        f"Paper {n}" for n in range(10)
    )


def test_records_are_plain_data():
    assert PaperRecord("A Title").title_key == "a title"


def test_absurd_counts_in_metadata_are_clamped_not_a_crash(tmp_path):
    content = (
        f"Popular Paper\n{ABSTRACT}\n  • 99999999999999 authors\n·\nJun 12, 2023 99999999999999\n"
    )
    run = ingest(write(tmp_path, content))
    assert run.status == IngestRun.Status.SUCCEEDED
    paper = Paper.objects.get()
    assert paper.upvotes == paper.author_count == 2**31 - 1


@settings(max_examples=40, deadline=None)
@given(
    content=st.binary(max_size=600)
    | st.lists(st.text(max_size=350), max_size=12).map(lambda lines: "\n".join(lines).encode())
)
def test_arbitrary_input_never_crashes_ingest_and_every_record_is_accounted_for(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(content)
        run = ingest(str(path))
    assert run.finished_at is not None
    if run.status == IngestRun.Status.FAILED:  # the records before binary data are kept
        assert run.error and "\n" not in run.error
    assert run.records == run.created + run.updated + run.unchanged


def test_an_interrupted_run_is_marked_failed_not_left_running(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "insert_instances", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ingest(write(tmp_path, dump("A Paper")))
    run = IngestRun.objects.get()
    assert (run.status, run.error) == (IngestRun.Status.FAILED, "interrupted")
    assert run.finished_at is not None


def ended_process_id() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def running_run(**fields) -> IngestRun:
    run = IngestRun.objects.create(source="dump.txt", format="daily-text", **fields)
    if "started_at" in fields:  # auto_now_add ignores a given value on create
        IngestRun.objects.filter(pk=run.pk).update(started_at=fields["started_at"])
    return run


def test_a_run_whose_process_is_gone_is_marked_failed_with_the_reason():
    run = running_run(host=socket.gethostname(), pid=ended_process_id())

    [marked] = fail_stale_runs(timezone.now())

    run.refresh_from_db()
    assert marked.pk == run.pk and run.status == IngestRun.Status.FAILED
    assert run.error.startswith(f"interrupted: its process ({run.pid} on ")
    assert run.finished_at is not None


def test_a_run_of_a_live_process_is_left_running():
    run = running_run(host=socket.gethostname(), pid=os.getpid(), heartbeat_at=timezone.now())

    assert fail_stale_runs(timezone.now()) == []
    run.refresh_from_db()
    assert run.status == IngestRun.Status.RUNNING


def test_a_run_elsewhere_is_stale_only_after_a_long_silence():
    now = timezone.now()
    recent = running_run(host="another-host", pid=1, heartbeat_at=now - STALE_AFTER / 2)
    silent = running_run(host="another-host", pid=2, heartbeat_at=now - STALE_AFTER - timedelta(1))
    legacy = running_run(started_at=now - STALE_AFTER * 2)  # no host, pid or heartbeat

    assert {run.pk for run in fail_stale_runs(now)} == {silent.pk, legacy.pk}
    silent.refresh_from_db()
    assert silent.error.startswith("interrupted: no sign of life since ")
    recent.refresh_from_db()
    assert recent.status == IngestRun.Status.RUNNING


def test_finished_runs_are_never_touched():
    old = timezone.now() - STALE_AFTER * 3
    for status in (IngestRun.Status.SUCCEEDED, IngestRun.Status.FAILED):
        running_run(
            status=status, host=socket.gethostname(), pid=ended_process_id(), started_at=old
        )

    assert fail_stale_runs(timezone.now()) == []
    assert not IngestRun.objects.filter(error__startswith="interrupted").exists()


def test_the_next_ingest_marks_a_killed_run_failed(tmp_path):
    killed = running_run(host=socket.gethostname(), pid=ended_process_id())

    run = ingest(write(tmp_path, dump("A Paper")))

    killed.refresh_from_db()
    assert (run.status, killed.status) == (IngestRun.Status.SUCCEEDED, IngestRun.Status.FAILED)
    assert killed.error.startswith("interrupted")


def test_each_stored_batch_is_a_sign_of_life(tmp_path):
    beats = []
    ingest(
        write(tmp_path, dump(*(f"Paper {n}" for n in range(25)))),
        batch_size=10,
        progress=lambda run, at, size: beats.append(run.heartbeat_at),
    )
    assert len(beats) == 3 and beats == sorted(beats)
    assert list(IngestRun.objects.values_list("heartbeat_at", flat=True)) == [beats[-1]]


def random_bytes(seed: int, megabytes: int) -> bytes:
    return random.Random(seed).randbytes(megabytes << 20)


def titles_in(content: bytes) -> set[str]:
    lines = content.decode().splitlines()
    return {item.title for item in parse_daily_text(lines) if isinstance(item, PaperRecord)}


@pytest.mark.parametrize(
    ("dump_name", "seed", "megabytes"),
    [("000_5d60b27bee63c9e0.txt", 1, 1), ("003_5be82b830cdb267c.txt", 2, 5)],
)
def test_a_dump_turning_binary_fails_saying_where_and_keeps_the_papers_before(
    tmp_path, dump_name, seed, megabytes
):
    text = (DUMPS / dump_name).read_bytes()
    run = ingest(write(tmp_path, text + random_bytes(seed, megabytes)), batch_size=50)

    assert run.status == IngestRun.Status.FAILED
    where = re.fullmatch(
        r"not text: binary data from byte ([\d,]+) \(line ([\d,]+)\) on \(NUL bytes\)", run.error
    )
    assert where, run.error
    offset, line = (int(number.replace(",", "")) for number in where.groups())
    assert len(text) <= offset < len(text) + 64
    assert line == text.count(b"\n") + 1  # the dump's last line, which the random bytes follow
    titles = set(Paper.objects.values_list("title", flat=True))
    assert titles <= titles_in(text)  # no junk papers
    assert len(titles) >= len(titles_in(text)) - 1  # only the record binary cut off is lost
    assert run.records == run.created == len(titles)


def test_a_json_document_turning_binary_fails_whole_saying_where(tmp_path):
    entries = [{"paper": {"title": f"Paper {n}", "summary": ABSTRACT}} for n in range(300)]
    text = json.dumps(entries, indent=1).encode()
    assert len(text) > 64 * 1024  # past the first chunk
    run = ingest(write(tmp_path, text + random_bytes(3, 2), "papers.json"))

    assert run.status == IngestRun.Status.FAILED
    line = text.count(b"\n") + 1
    assert run.error.startswith(f"not text: binary data from byte {len(text):,} (line {line:,}) on")
    assert Paper.objects.count() == 0  # a document is read whole or not at all


def test_a_stray_control_character_in_text_is_not_binary():
    assert binary_start(dump("A \x0c Title \x1b[1m Bold").encode() * 200) is None


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(any_text, max_size=12),
    format=st.sampled_from(["auto", "daily-text", "daily-json"]),
)
def test_any_unicode_input_is_stored_or_refused_with_a_reason_never_an_exception(lines, format):
    content = "\n".join(lines).encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(content)
        run = ingest(str(path), format=format)

    assert run.finished_at is not None
    if run.status == IngestRun.Status.FAILED:  # a documented refusal, not a crash
        assert run.error.startswith(
            ("the input is empty", "not text: ", "not valid JSON", "expected")
        )
    else:
        assert run.records == run.created + run.updated + run.unchanged
