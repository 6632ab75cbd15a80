"""The `ingest` management command, run as a user runs it: a real process where stdin, the exit
status and the terminal matter, call_command otherwise."""

import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from digest.models import IngestRun, Paper

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[3]
DUMPS = PROJECT_DIR / "samples" / "dumps"
ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_summary_table_lists_each_dump_and_the_total():
    out, err = run_command(*sorted(str(path) for path in DUMPS.glob("*.txt")))
    lines = out.splitlines()
    assert lines[0].split() == [
        "source",
        "format",
        "records",
        "created",
        "updated",
        "unchanged",
        "rejected",
    ]
    assert lines[1].endswith("daily-text        197        197          0          0          0")
    assert lines[-1].split() == ["total", "555", "456", "99", "0", "0"]
    assert err == ""  # no progress bar when stderr is not a terminal


def test_json_output_is_one_object_with_counts_and_rejections(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text(f"Good Paper\n{ABSTRACT}\nLost Title\n")
    out, _ = run_command(str(path), "--json")
    assert json.loads(out) == {
        "records": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": [
            {"where": "line 3", "why": "title with no abstract at the end (truncated dump?)"}
        ],
        "sources": [
            {
                "source": str(path),
                "format": "daily-text",
                "status": "succeeded",
                "records": 1,
                "created": 1,
                "updated": 0,
                "unchanged": 0,
                "rejected": 1,
                "cut": {},
                "note": "",
                "error": "",
            }
        ],
    }


def test_json_for_several_sources_says_which_source_rejected(tmp_path):
    (tmp_path / "a.txt").write_text(f"Paper A\n{ABSTRACT}\nLost A\n")
    (tmp_path / "b.txt").write_text(f"Paper B\n{ABSTRACT}\n")
    out, _ = run_command(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "--json")
    summary = json.loads(out)
    assert (summary["records"], summary["created"]) == (2, 2)
    assert summary["rejected"] == [
        {
            "where": f"{tmp_path / 'a.txt'}, line 3",
            "why": "title with no abstract at the end (truncated dump?)",
        }
    ]


def test_json_keeps_the_tables_per_source_breakdown_with_each_failure(tmp_path):
    (tmp_path / "a.txt").write_text(f"Paper A\n{ABSTRACT}\nLost A\n")
    (tmp_path / "empty.txt").write_text("")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "ingest", str(tmp_path / "a.txt"), str(tmp_path / "empty.txt"), "--json", stdout=out
        )
    sources = json.loads(out.getvalue())["sources"]
    assert [
        (s["source"], s["format"], s["status"], s["records"], s["created"], s["rejected"])
        for s in sources
    ] == [
        (str(tmp_path / "a.txt"), "daily-text", "succeeded", 1, 1, 1),
        (str(tmp_path / "empty.txt"), "auto", "failed", 0, 0, 0),
    ]
    assert [s["error"] for s in sources] == ["", "the input is empty"]


def test_rejected_records_are_listed_under_the_table(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text(f"Good Paper\n{ABSTRACT}\nLost Title\n")
    out, _ = run_command(str(path))
    assert f"Rejected in {path}:" in out
    assert "  line 3: title with no abstract at the end (truncated dump?)" in out


def test_fields_cut_to_their_bounds_are_counted_under_the_table_and_in_json(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text(f"Good Paper\n{'a long word list ' * 2_000}\n")
    out, _ = run_command(str(path))
    assert f"Cut to their bounds in {path} (records): abstract 1" in out
    out, _ = run_command(str(path), "--json")
    assert json.loads(out)["sources"][0]["cut"] == {"abstract": 1}


def test_a_progress_bar_is_drawn_on_a_terminal(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text(f"Good Paper\n{ABSTRACT}")
    terminal = Terminal()
    call_command("ingest", str(path), stdout=io.StringIO(), stderr=terminal)
    assert "[##############################] 100% 1 papers" in terminal.getvalue()


def test_missing_file_is_a_command_error_with_a_one_line_reason(tmp_path):
    with pytest.raises(CommandError) as error:
        run_command(str(tmp_path / "nope.txt"))
    assert str(error.value) == f"{tmp_path / 'nope.txt'}: no such file: {tmp_path / 'nope.txt'}"
    assert IngestRun.objects.get().status == IngestRun.Status.FAILED


def test_one_unreadable_source_does_not_stop_the_others(tmp_path):
    (tmp_path / "good.txt").write_text(f"Paper A\n{ABSTRACT}")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CommandError, match="empty.txt: the input is empty"):
        run_command(str(tmp_path / "empty.txt"), str(tmp_path / "good.txt"))
    assert Paper.objects.get().title == "Paper A"


def test_a_wrong_explicit_format_reports_what_it_could_not_read(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text(f"Paper A\n{ABSTRACT}")
    with pytest.raises(CommandError, match="not valid JSON"):
        run_command(str(path), "--format", "daily-json")


@pytest.fixture
def process_env(migrated_database, tmp_path) -> dict[str, str]:
    """For a real `manage.py ingest` process, on a database file of its own."""
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated_database, database)
    return {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}


def manage_ingest(env, *args, stdin=b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "ingest", *args],
        cwd=PROJECT_DIR,
        env=env,
        input=stdin,
        capture_output=True,
    )


def test_dash_reads_stdin_and_exit_status_is_zero_despite_rejections(process_env):
    dump = f"Paper From Stdin\n{ABSTRACT}\nLost Title\n".encode()
    result = manage_ingest(process_env, "-", "--json", stdin=dump)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["created"], len(summary["rejected"])) == (1, 1)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "the input is empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text")],
)
def test_unreadable_input_exits_non_zero_with_one_line_reason(process_env, content, reason):
    result = manage_ingest(process_env, "-", stdin=content)
    assert result.returncode == 1
    [line] = result.stderr.decode().strip().splitlines()
    assert line.startswith(f"CommandError: -: {reason}")


def test_unknown_format_exits_non_zero(process_env):
    result = manage_ingest(process_env, "-", "--format", "csv")
    assert result.returncode != 0
    assert "invalid choice: 'csv'" in result.stderr.decode()


def runs_in(env) -> list[tuple[str, str]]:
    """(status, error) of every run in a process's database file, oldest first."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as database:
        return database.execute("SELECT status, error FROM digest_ingestrun ORDER BY id").fetchall()


def start_ingest_reading_a_slow_stdin(env) -> subprocess.Popen:
    """A real `manage.py ingest -` blocked on standard input, once its run is recorded."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ingest", "-"],
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdin.write(f"A Paper Still Arriving\n{ABSTRACT}\n".encode())
    process.stdin.flush()
    for _ in range(600):  # up to a minute on a busy machine: not a timing assertion
        if runs_in(env) or process.poll() is not None:
            break
        time.sleep(0.1)
    assert runs_in(env) == [("running", "")], process.communicate()
    return process


def test_a_sigkilled_ingest_is_marked_failed_by_the_next_ingest(process_env):
    process = start_ingest_reading_a_slow_stdin(process_env)
    process.kill()
    process.communicate()
    assert runs_in(process_env) == [("running", "")]  # a SIGKILL leaves no chance to clean up

    result = manage_ingest(process_env, "-", stdin=f"Next Paper\n{ABSTRACT}".encode())

    assert result.returncode == 0, result.stderr
    [(killed_status, killed_error), next_run] = runs_in(process_env)
    assert killed_status == "failed"
    assert killed_error.startswith(f"interrupted: its process ({process.pid} on ")
    assert next_run == ("succeeded", "")


def test_a_terminated_ingest_marks_its_own_run_interrupted(process_env):
    process = start_ingest_reading_a_slow_stdin(process_env)
    process.send_signal(signal.SIGTERM)
    process.communicate()

    assert process.returncode == 128 + signal.SIGTERM
    assert runs_in(process_env) == [("failed", "interrupted")]


def test_a_dump_followed_by_random_bytes_fails_the_command_saying_where(process_env, tmp_path):
    text = (DUMPS / "001_f06e917915c8c97f.txt").read_bytes()
    path = tmp_path / "dump.txt"
    path.write_bytes(text + random.Random(10).randbytes(3 << 20))

    result = manage_ingest(process_env, str(path), "--json")

    assert result.returncode == 1
    [line] = result.stderr.decode().strip().splitlines()
    assert line.startswith(f"CommandError: {path}: not text: binary data from byte {len(text):,}")
    summary = json.loads(result.stdout)
    assert summary["failed"] == [{"source": str(path), "why": line.split(": ", 2)[2]}]
    assert 0 < summary["created"] <= text.count(b"\n")
    database = process_env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        titles = {title for (title,) in connection.execute("SELECT title FROM digest_paper")}
    assert len(titles) == summary["created"]
    assert all(title.isprintable() and title in text.decode() for title in titles)
