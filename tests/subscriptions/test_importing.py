import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.importing import (
    MAX_PAPERS_PER_DIGEST,
    BadFile,
    BadRow,
    decode_csv,
    import_subscribers_csv,
    parse_row,
    read_rows,
)
from subscriptions.models import Subscriber
from tests.conftest import PROJECT_DIR
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db

HEADER = "email,topics,frequency,send_hour,timezone\n"


def import_csv(tmp_path: Path, body: str, capsys, *options: str) -> tuple[str, str]:
    path = tmp_path / "readers.csv"
    path.write_text(HEADER + body)
    call_command("import_subscribers", str(path), *options)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_imported_readers_are_confirmed_and_active(tmp_path, capsys):
    out, _ = import_csv(
        tmp_path,
        "ada@example.com,mixture of experts; quantization ,weekly,8,Europe/Paris\n",
        capsys,
    )

    ada = Subscriber.objects.get()
    assert ada.status == Subscriber.Status.ACTIVE and ada.confirmed_at is not None
    assert ada.topic_lines == ["mixture of experts", "quantization"]
    assert (ada.frequency, ada.send_hour, ada.time_zone) == ("weekly", 8, "Europe/Paris")
    assert "Imported 1 new" in out


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept(tmp_path, capsys):
    _, err = import_csv(
        tmp_path,
        "good@example.com,llms,daily,7,UTC\n"
        "not-an-address,llms,daily,7,UTC\n"
        "nohour@example.com,llms,daily,25,UTC\n"
        "nozone@example.com,llms,daily,7,Mars/Olympus\n"
        "notopics@example.com,,daily,7,UTC\n"
        "often@example.com,llms,hourly,7,UTC\n"
        "alsogood@example.com,diffusion,,,\n",
        capsys,
        "--allow-rejects",
    )

    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "alsogood@example.com",
        "good@example.com",
    ]
    lines = err.strip().splitlines()
    assert [line.split(":")[1] for line in lines] == ["3", "4", "5", "6", "7"]
    assert "invalid email address 'not-an-address'" in lines[0]
    assert "send_hour '25'" in lines[1]
    assert "unknown time zone 'Mars/Olympus'" in lines[2]
    assert "no topics" in lines[3]
    assert "frequency 'hourly'" in lines[4]


def test_reimport_updates_instead_of_duplicating(tmp_path, capsys):
    import_csv(tmp_path, "ada@example.com,llms,daily,7,UTC\n", capsys)
    out, _ = import_csv(tmp_path, "ADA@example.com,diffusion;robotics,daily,9,Asia/Tokyo\n", capsys)

    ada = Subscriber.objects.get()
    assert ada.topic_lines == ["diffusion", "robotics"]
    assert (ada.send_hour, ada.time_zone) == (9, "Asia/Tokyo")
    assert "Imported 0 new and updated 1" in out


def test_an_unsubscribed_reader_is_not_resubscribed_by_an_import(tmp_path, capsys):
    Subscriber.objects.create(email="gone@example.com", status=Subscriber.Status.UNSUBSCRIBED)

    out, err = import_csv(tmp_path, "gone@example.com,llms,daily,7,UTC\n", capsys)

    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    assert ":2: gone@example.com unsubscribed; left as they are, not re-subscribed" in out
    assert "1 left alone (unsubscribed or suppressed)" in out and err == ""


def test_the_sample_readers_import_cleanly(capsys):
    call_command("import_subscribers", str(PROJECT_DIR / "samples" / "subscribers.csv"))

    assert capsys.readouterr().err == ""
    assert Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).count() == 6


def test_optional_columns_set_weekday_papers_and_paused_status(tmp_path, capsys):
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,topics,frequency,send_hour,timezone,weekday,papers_per_digest,status\n"
        "ada@example.com,llms,weekly,8,UTC,friday,5,paused\n"
        "grace@example.com,llms,weekly,8,UTC,6,,active\n"
    )

    call_command("import_subscribers", str(path))

    ada, grace = Subscriber.objects.order_by("email")
    assert (ada.weekday, ada.papers_per_digest, ada.status) == (4, 5, "paused")
    assert (grace.weekday, grace.papers_per_digest, grace.status) == (6, 10, "active")


def test_rows_that_are_not_active_or_paused_are_reported_not_imported(tmp_path, capsys):
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,topics,frequency,send_hour,timezone,weekday,papers_per_digest,status\n"
        "gone@example.com,llms,daily,7,UTC,monday,10,unsubscribed\n"
        "bad@example.com,llms,daily,7,UTC,someday,10,active\n"
        "many@example.com,llms,daily,7,UTC,monday,500,active\n"
    )

    call_command("import_subscribers", str(path), "--allow-rejects")

    err = capsys.readouterr().err
    assert not Subscriber.objects.exists()
    assert "readers.csv:2: status 'unsubscribed'" in err
    assert "readers.csv:3: weekday 'someday'" in err
    assert "readers.csv:4: papers_per_digest '500'" in err


def test_a_file_without_optional_columns_keeps_a_readers_weekday_and_papers(tmp_path, capsys):
    Subscriber.objects.create(
        email="ada@example.com", status="active", weekday=3, papers_per_digest=20, topics="x"
    )

    import_csv(tmp_path, "ada@example.com,llms,weekly,9,UTC\n", capsys)

    ada = Subscriber.objects.get()
    assert (ada.topics, ada.weekday, ada.papers_per_digest) == ("llms", 3, 20)


def test_variant_spellings_of_an_address_import_as_one_canonical_reader(tmp_path, capsys):
    Subscriber.objects.create(email="reader@xn--bcherei-n2a.de", status="active", topics="x")

    _, err = import_csv(
        tmp_path,
        "reader@Bücherei.de,llms,daily,7,UTC\n"
        "victim@ｅxample.com,llms,daily,7,UTC\n"
        "victim@EXAMPLE.COM,llms,daily,7,UTC\n"
        "victim@e\u00adxample.com,llms,daily,7,UTC\n",
        capsys,
        "--allow-rejects",
    )

    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "reader@xn--bcherei-n2a.de",
        "victim@example.com",
    ]
    assert Subscriber.objects.get(email="reader@xn--bcherei-n2a.de").topics == "llms"
    assert "readers.csv:5: invalid email address" in err and "soft hyphen" in err


def emails() -> list[str]:
    return sorted(Subscriber.objects.values_list("email", flat=True))


def test_an_unterminated_quote_rejects_its_line_and_the_rows_after_it_are_imported(
    tmp_path, capsys
):
    _, err = import_csv(
        tmp_path,
        "good@example.com,llms,daily,7,UTC\n"
        'bob@example.com,"llms;diffusion,daily,7,UTC\n'
        "carol@example.com,robotics,daily,7,UTC\n"
        'dave@example.com,"quantization",weekly,9,UTC\n'
        'erin@example.com,"agents"x,daily,7,UTC\n'
        "fay@example.com,bandits,daily,7,UTC\n",
        capsys,
        "--allow-rejects",
    )

    assert emails() == [
        "carol@example.com",
        "dave@example.com",
        "fay@example.com",
        "good@example.com",
    ]
    assert Subscriber.objects.get(email="carol@example.com").topic_lines == ["robotics"]
    assert err.splitlines() == [
        f'{tmp_path / "readers.csv"}:3: a quoted cell is not closed on this line (a missing ")',
        f"{tmp_path / 'readers.csv'}:6: cannot split this line into cells: ',' expected after '\"'",
    ]


def test_a_row_with_more_cells_than_the_header_is_rejected(tmp_path, capsys):
    _, err = import_csv(
        tmp_path,
        "ada@example.com,llms, diffusion,daily,7,UTC\nbob@example.com,llms,daily,7,UTC,,\n",
        capsys,
        "--allow-rejects",
    )

    assert emails() == ["bob@example.com"]
    assert ":2: 6 cells where the header has 5 (a comma in a cell that is not quoted?)" in err


def test_a_file_with_only_email_and_topics_imports_with_the_defaults(tmp_path):
    path = tmp_path / "readers.csv"
    path.write_text("email,topics\nada@example.com,llms;diffusion\n")

    call_command("import_subscribers", str(path))

    ada = Subscriber.objects.get()
    assert ada.topic_lines == ["llms", "diffusion"]
    assert (ada.frequency, ada.send_hour, ada.time_zone) == ("daily", 7, "UTC")


def test_a_file_without_topics_is_refused_whole_saying_which_column_is_missing(tmp_path):
    path = tmp_path / "readers.csv"
    path.write_text("email,frequency\nada@example.com,daily\n")

    with pytest.raises(CommandError, match="line 1, the header: missing columns: topics$"):
        call_command("import_subscribers", str(path), "--allow-rejects")
    assert emails() == []


def manage_import(migrated_database, tmp_path, content: bytes, *options: str):
    """A real `manage.py import_subscribers` process, as an operator runs it."""
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated_database, database)
    path = tmp_path / "readers.csv"
    path.write_bytes(content)
    return subprocess.run(
        [sys.executable, "manage.py", "import_subscribers", str(path), *options],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
    )


def test_a_file_that_is_not_utf8_is_a_one_line_error_and_exit_status_1(migrated_database, tmp_path):
    content = HEADER + "ada@example.com,llms,daily,7,UTC\nzoë@example.com,llms,daily,7,UTC\n"

    result = manage_import(migrated_database, tmp_path, content.encode("latin-1"))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"CommandError: {tmp_path / 'readers.csv'}: not UTF-8: line 3, column 3 has the byte "
        "0xeb; save the file as UTF-8 and import it again (nothing was imported)"
    ]


@pytest.mark.parametrize(
    ("options", "status"), [((), 1), (("--allow-rejects",), 0)], ids=["default", "allowed"]
)
def test_the_exit_status_says_whether_rows_were_rejected(
    migrated_database, tmp_path, options, status
):
    content = HEADER + "ada@example.com,llms,daily,7,UTC\nnot-an-address,llms,daily,7,UTC\n"

    result = manage_import(migrated_database, tmp_path, content.encode(), *options)

    assert result.returncode == status
    assert "Imported 1 new and updated 0 subscribers; 0 unchanged" in result.stdout
    assert "rejected 1 rows; 2 rows read." in result.stdout
    assert f"{tmp_path / 'readers.csv'}:3: invalid email address 'not-an-address'" in result.stderr
    if status:
        assert result.stderr.splitlines()[-1].startswith("CommandError: 1 rows of ")


def test_a_clean_file_exits_0(migrated_database, tmp_path):
    result = manage_import(
        migrated_database, tmp_path, (PROJECT_DIR / "samples/subscribers.csv").read_bytes()
    )
    assert (result.returncode, result.stderr) == (0, "")


# Property-based: any unicode on any line, and good rows beside bad ones.

any_line = any_text.map(lambda text: text.replace("\n", " "))  # a line of the file


@settings(max_examples=400, deadline=None)
@given(st.lists(any_line, max_size=12))
def test_any_unicode_lines_are_rows_or_rejections_with_their_line(lines):
    read = read_rows([HEADER.strip(), *lines])
    rows, rejected = read.rows, read.rejected

    assert {line for line, _ in rejected} <= set(range(2, len(lines) + 2))
    assert all(reason and "\n" not in reason for _, reason in rejected)
    for fields in rows.values():
        assert 2 <= fields["line"] <= len(lines) + 1
        assert fields["topics"] and "\n\n" not in fields["topics"]


number_like = st.sampled_from(["²", "٣", "7.0", "+7", " 7 ", "0x7", "9" * 5000, "-1", "24", "007"])


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            column: any_text | number_like
            for column in (
                "frequency",
                "send_hour",
                "timezone",
                "weekday",
                "papers_per_digest",
                "status",
            )
        },
    )
)
def test_any_text_in_the_optional_columns_is_a_reader_or_a_rejection(columns):
    row = {"email": "reader@example.com", "topics": "graph learning", **columns}

    try:
        fields = parse_row(row)
    except BadRow as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert 0 <= fields["send_hour"] <= 23
        assert 1 <= fields.get("papers_per_digest", 1) <= MAX_PAPERS_PER_DIGEST


def test_an_hour_in_other_digits_or_too_many_of_them_is_rejected():
    for hour in ("²", "9" * 5000, "+7", "7.0"):
        with pytest.raises(BadRow, match="send_hour"):
            parse_row({"email": "reader@example.com", "topics": "graphs", "send_hour": hour})
    assert (
        parse_row({"email": "a@example.com", "topics": "graphs", "send_hour": "07"})["send_hour"]
        == 7
    )


good_row = st.builds(
    lambda number, topic: (f"reader{number}@example.com", topic),
    st.integers(min_value=0, max_value=10**6),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=30),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(good_row, st.lists(any_line, max_size=3)), min_size=1, max_size=6))
def test_good_rows_are_imported_beside_any_bad_line(groups):
    lines = [HEADER.strip()]
    for (email, topic), junk in groups:
        lines += [f"{email},{topic},daily,7,UTC", *junk]
    readers = {email: topic for (email, topic), _ in groups}  # the last row for one wins

    rows = read_rows(lines).rows

    # A junk line is a reader of its own only with an address; it cannot be one of ours.
    assert {email: rows[email]["topics"] for email in readers} == readers


@settings(max_examples=300)
@given(st.binary(max_size=300) | any_text.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_are_lines_or_refused_as_not_utf8(data):
    try:
        lines = decode_csv(data)
    except BadFile as error:
        assert str(error).startswith("not UTF-8: line ")
    else:
        assert "\n".join(lines) == data.decode("utf-8-sig")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(good_row, st.lists(any_line, max_size=2)), min_size=1, max_size=4))
def test_an_import_with_bad_lines_saves_every_good_row(groups):
    Subscriber.objects.all().delete()  # examples share the test's transaction
    lines = [HEADER.strip()]
    for (email, topic), junk in groups:
        lines += [f"{email},{topic},daily,7,UTC", *junk]

    import_subscribers_csv(lines)

    saved = dict(Subscriber.objects.values_list("email", "topics"))
    assert {email: saved.get(email) for (email, _), _ in groups} == {
        email: topic for (email, topic), _ in groups
    }
