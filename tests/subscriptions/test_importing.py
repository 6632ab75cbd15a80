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
