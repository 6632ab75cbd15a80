from pathlib import Path

import pytest
from django.core.management import call_command

from subscriptions.models import Subscriber
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.django_db

HEADER = "email,topics,frequency,send_hour,timezone\n"


def import_csv(tmp_path: Path, body: str, capsys) -> tuple[str, str]:
    path = tmp_path / "readers.csv"
    path.write_text(HEADER + body)
    call_command("import_subscribers", str(path))
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

    _, err = import_csv(tmp_path, "gone@example.com,llms,daily,7,UTC\n", capsys)

    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    assert "gone@example.com is unsubscribed; not re-subscribed" in err


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

    call_command("import_subscribers", str(path))

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
    )

    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "reader@xn--bcherei-n2a.de",
        "victim@example.com",
    ]
    assert Subscriber.objects.get(email="reader@xn--bcherei-n2a.de").topics == "llms"
    assert "readers.csv:5: invalid email address" in err and "soft hyphen" in err
