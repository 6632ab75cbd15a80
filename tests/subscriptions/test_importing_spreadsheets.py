"""import_subscribers reads what spreadsheets write: RFC 4180 quoting (multi-line cells), a BOM,
`;` separators; repeated addresses are reported (the last row wins) and every row is counted."""

import csv
from pathlib import Path

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.importing import ROW_START, read_rows, restore_cell
from subscriptions.models import Subscriber
from subscriptions.topics import split_topics
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db


def run_import(tmp_path: Path, content: bytes, capsys, *options: str) -> tuple[str, str]:
    path = tmp_path / "readers.csv"
    path.write_bytes(content)
    call_command("import_subscribers", str(path), *options)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_a_quoted_cell_over_several_lines_is_one_row_of_topics(tmp_path, capsys):
    content = (
        'email,topics,frequency\r\nada@example.com,"diffusion models\r\n-survey\r\n'
        'protein folding, ""quoted"" words",weekly\r\ngrace@example.com,bandits,daily\r\n'
    )

    out, err = run_import(tmp_path, content.encode(), capsys)

    ada = Subscriber.objects.get(email="ada@example.com")
    assert ada.topic_lines == ["diffusion models", "-survey", "protein folding", '"quoted" words']
    assert ada.frequency == "weekly"
    assert Subscriber.objects.get(email="grace@example.com").topic_lines == ["bandits"]
    assert err == "" and "Imported 2 new" in out and "; 2 rows read." in out


def test_an_excel_file_with_a_bom_and_semicolons_is_read(tmp_path, capsys):
    content = 'email;topics;send_hour\r\nada@example.com;"llms, agents";9\r\n'

    out, err = run_import(tmp_path, content.encode("utf-8-sig"), capsys)

    ada = Subscriber.objects.get()
    assert (ada.email, ada.topic_lines, ada.send_hour) == ("ada@example.com", ["llms", "agents"], 9)
    assert err == ""


def test_a_nul_character_rejects_its_row_and_the_rows_beside_it_are_imported(tmp_path, capsys):
    content = "email,topics\nada@example.com,llms\x00 agents\ngrace@example.com,bandits\n"

    out, err = run_import(tmp_path, content.encode(), capsys, "--allow-rejects")

    assert ":2: the topics cell holds a NUL character, which no text field can keep" in err
    assert list(Subscriber.objects.values_list("email", "topics")) == [
        ("grace@example.com", "bandits")
    ]
    assert "Imported 1 new" in out


def test_a_semicolon_file_with_too_many_cells_names_the_semicolon(tmp_path, capsys):
    content = "email;topics\nada@example.com;llms;agents\n"

    _, err = run_import(tmp_path, content.encode(), capsys, "--allow-rejects")

    assert ":2: 3 cells where the header has 2 (a semicolon in a cell that is not quoted?)" in err


def test_a_repeated_address_is_reported_by_line_and_the_last_row_wins(tmp_path, capsys):
    content = (
        "email,topics,send_hour\n"
        "ada@example.com,first,7\n"
        "grace@example.com,bandits,7\n"
        "ADA@example.com,second,8\n"
        "bad-address,llms,7\n"
        "ada@example.com,third,9\n"
    )

    out, err = run_import(tmp_path, content.encode(), capsys, "--allow-rejects")

    ada = Subscriber.objects.get(email="ada@example.com")
    assert (ada.topics, ada.send_hour) == ("third", 9)
    assert (
        f"{tmp_path / 'readers.csv'}:2: ada@example.com again on line 6; the last row wins" in out
    )
    assert f"{tmp_path / 'readers.csv'}:4: ADA@example.com again on line 6;" not in out
    assert ":4: ada@example.com again on line 6; the last row wins, this one is skipped" in out
    assert ":5: invalid email address 'bad-address'" in err
    assert out.splitlines()[-1] == (
        "Imported 2 new and updated 0 subscribers; 0 unchanged, 0 left alone (unsubscribed or "
        "suppressed), 2 duplicate rows skipped (the last row for an address wins), rejected 1 "
        "rows; 5 rows read."
    )


def test_importing_the_same_file_again_counts_the_rows_as_unchanged(tmp_path, capsys):
    content = b"email,topics\nada@example.com,llms\ngrace@example.com,bandits\n"
    run_import(tmp_path, content, capsys)

    out, _ = run_import(tmp_path, content, capsys)

    assert "Imported 0 new and updated 0 subscribers; 2 unchanged," in out


def test_an_open_quote_never_swallows_the_rows_after_it(tmp_path, capsys):
    content = 'email,topics\nada@example.com,"llms\ngrace@example.com,bandits\n'

    _, err = run_import(tmp_path, content.encode(), capsys, "--allow-rejects")

    assert [s.email for s in Subscriber.objects.all()] == ["grace@example.com"]
    assert ':2: a quoted cell is not closed on this line (a missing ")' in err


rows_of_topics = st.lists(
    st.tuples(st.integers(0, 10**6), st.lists(any_text, min_size=1, max_size=4)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(rows_of_topics, st.sampled_from([",", ";"]))
def test_a_row_whatever_its_quoted_cell_holds_is_read_with_its_topics_or_rejected(rows, delimiter):
    lines, starts = [f"email{delimiter}topics"], {}
    for number, topics in rows:
        cell = "\n".join(topics)
        starts[len(lines) + 1] = (f"reader{number}@example.com", cell)
        quoted = cell.replace('"', '""')
        lines += f'reader{number}@example.com{delimiter}"{quoted}"'.split("\n")

    read = read_rows(lines)

    rejected = dict(read.rejected)
    superseded = {line for line, _, _ in read.duplicates}
    for line, (email, cell) in starts.items():
        row = read.rows.get(email)
        if row is not None and row["line"] == line:
            # A "'" before a formula sign or another "'" is the export's marker, dropped on import.
            assert row["topics"] == "\n".join(split_topics(restore_cell(cell)))
        else:
            assert line in rejected or line in superseded
            if line in rejected and not starts_a_row_inside(cell, delimiter):
                topics = split_topics(cell)  # the reasons a well-quoted row is rejected for
                too_long = len(cell) > csv.field_size_limit()
                assert not topics or len(topics) > 20 or too_long or "\x00" in cell


def starts_a_row_inside(cell: str, delimiter: str) -> bool:
    """Whether a line of the cell looks like a new row (where an open quote is taken to stop)."""
    return any(
        ROW_START.fullmatch(line.partition(delimiter)[0])
        for line in cell.split("\n")[1:]
        if delimiter in line
    )
