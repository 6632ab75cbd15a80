"""export_subscribers writes the CSV import_subscribers reads back to the same readers."""

import csv
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.importing import IMPORTED_STATUSES
from subscriptions.models import Subscriber
from tests.unicode_text import any_text

pytestmark = pytest.mark.django_db
READER_FIELDS = [
    "email",
    "status",
    "topics",
    "frequency",
    "weekday",
    "send_hour",
    "time_zone",
    "papers_per_digest",
]


def readers() -> list[dict]:
    return list(Subscriber.objects.order_by("email").values(*READER_FIELDS))


def export_then_import_into_an_empty_database(tmp_path) -> list[dict]:
    path = tmp_path / "readers.csv"
    call_command("export_subscribers", str(path), stdout=io.StringIO())
    Subscriber.objects.all().delete()
    call_command("import_subscribers", str(path), stdout=io.StringIO())
    return readers()


def reader(email: str, **fields) -> Subscriber:
    return Subscriber.objects.create(
        email=email, confirmed_at=timezone.now(), **{"status": "active", **fields}
    )


def test_an_export_imports_back_to_the_same_readers(tmp_path):
    reader(
        "ada@example.com",
        topics="=HYPERLINK(x)\n-survey\n@handle",
        frequency="weekly",
        weekday=4,
        send_hour=23,
        time_zone="Asia/Tokyo",
        papers_per_digest=7,
    )
    reader("grace@xn--bcherei-n2a.de", topics='protein folding\n"quoted" words', status="paused")
    reader("+plus@example.com", topics="'=quoted formula\n'apostrophe\n−minus", send_hour=0)
    before = readers()

    assert export_then_import_into_an_empty_database(tmp_path) == before


def test_only_active_and_paused_readers_are_exported_unless_asked(capsys):
    reader("ada@example.com", topics="llms")
    reader("gone@example.com", topics="llms", status="unsubscribed")

    call_command("export_subscribers")
    default = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    call_command("export_subscribers", "-", "--status", "unsubscribed")
    gone = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    assert [row["email"] for row in default] == ["ada@example.com"]
    assert [(row["email"], row["status"]) for row in gone] == [("gone@example.com", "unsubscribed")]


def test_the_export_says_how_many_it_wrote_and_where(tmp_path, capsys):
    reader("ada@example.com", topics="llms")

    call_command("export_subscribers", str(tmp_path / "out.csv"))

    assert capsys.readouterr().out == f"Exported 1 subscribers to {tmp_path / 'out.csv'}.\n"


# What a form can save: text a request can carry (no lone surrogates) and a form field accepts
# (Django's fields refuse NUL), of a topic's length.
topic_text = any_text.filter(
    lambda text: (
        0 < len(text) < 60
        and "\x00" not in text
        and not any("\ud800" <= c <= "\udfff" for c in text)
    )
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(topic_text, min_size=1, max_size=5), st.sampled_from(IMPORTED_STATUSES)),
        min_size=1,
        max_size=4,
    )
)
def test_any_topics_a_reader_can_save_survive_the_round_trip(tmp_path_factory, rows):
    from subscriptions.forms import clean_topic_lines

    Subscriber.objects.all().delete()  # examples share the test's transaction
    for number, (texts, status) in enumerate(rows):
        try:
            topics = clean_topic_lines("\n".join(texts))
        except Exception:  # noqa: BLE001 - a list the form refuses is never saved
            continue
        reader(f"reader{number}@example.com", topics=topics, status=status)
    before = readers()

    assert export_then_import_into_an_empty_database(tmp_path_factory.mktemp("csv")) == before
