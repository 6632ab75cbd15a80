import json
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest import ingest
from digest.ingest.daily_json import DailyJsonError, load_daily_json, parse_daily_json
from digest.ingest.records import TITLE_MAX_CHARS, PaperRecord, Rejection, clean_text
from digest.models import FeedState, IngestRun, Paper
from tests.conftest import QuietHandler, http_server
from tests.unicode_text import any_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_entries_give_id_authors_upvotes_and_date_and_bad_entries_are_reported():
    items = list(parse_daily_json(load_daily_json((FIXTURES / "daily-papers.json").read_bytes())))
    moe, tiny, untitled, not_an_entry = items
    assert (moe.arxiv_id, moe.title, moe.upvotes) == (
        "2401.11111",
        "Sparse Mixture of Experts Routing at Scale",
        42,
    )
    assert (moe.authors, moe.published_on) == (["Ada Lovelace", "Alan Turing"], date(2024, 1, 21))
    assert moe.url == "https://arxiv.org/abs/2401.11111"
    assert tiny.abstract == "A small network reasons recursively."
    assert untitled == Rejection("entry 3", "paper without a title")
    assert not_an_entry == Rejection("entry 4", "entry is not an object with a paper")


def test_a_document_that_is_not_a_list_of_entries_cannot_be_read():
    with pytest.raises(DailyJsonError, match="expected a JSON list"):
        load_daily_json(b'{"hello": 1}')


@pytest.mark.django_db
def test_daily_json_file_is_detected_and_ingested(tmp_path):
    run = ingest(str(FIXTURES / "daily-papers.json"))
    assert (run.format, run.records, run.created, run.rejected_count) == ("daily-json", 2, 2, 2)
    assert Paper.objects.get(arxiv_id="2401.33333").upvotes == 7


@pytest.mark.django_db
def test_invalid_json_fails_with_the_reason(tmp_path):
    path = tmp_path / "papers.json"
    path.write_text('[{"paper": {"id": "1"}')
    run = ingest(str(path))
    assert run.status == IngestRun.Status.FAILED
    assert run.error.startswith("not valid JSON: ")


@pytest.mark.django_db
def test_daily_json_url_is_fetched_with_a_conditional_request():
    body = (FIXTURES / "daily-papers.json").read_bytes()
    seen = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("If-None-Match"))
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(body)

    with http_server(Handler) as base:
        url = f"{base}/api/daily_papers.json"
        first, second = ingest(url), ingest(url)
    assert (first.format, first.created) == ("daily-json", 2)
    assert (second.records, second.note) == (0, "not modified since the last poll")
    assert seen == [None, '"v1"']
    assert FeedState.objects.get(url=url).etag == '"v1"'
    assert (
        json.loads(body)[0]["paper"]["upvotes"] == Paper.objects.get(arxiv_id="2401.11111").upvotes
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["paper", "id", "title", "summary", "authors", "upvotes", "publishedAt"]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.lists(json_values, max_size=8))
def test_arbitrary_json_entries_never_crash_the_parser(entries):
    items = list(parse_daily_json(entries))
    assert len(items) == len(entries)
    assert all(isinstance(item, PaperRecord | Rejection) for item in items)


@pytest.mark.django_db
def test_a_json_api_url_without_json_suffix_is_detected_by_its_content_type():
    body = (FIXTURES / "daily-papers.json").read_bytes()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

    with http_server(Handler) as base:
        run = ingest(f"{base}/api/daily_papers")
    assert (run.status, run.format, run.created) == (IngestRun.Status.SUCCEEDED, "daily-json", 2)


# Property-based: any unicode in any field, and good entries beside bad ones.

SURROGATE = re.compile("[\ud800-\udfff]")
field_value = any_text | st.integers() | st.none() | st.lists(any_text, max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["id", "title", "summary", "authors", "upvotes", "publishedAt"]),
            field_value,
        ).map(lambda paper: {"paper": paper}),
        max_size=6,
    )
)
def test_any_unicode_in_any_field_gives_clean_records_or_rejections(entries):
    document = json.dumps(entries).encode()  # ASCII escapes: lone surrogates come back as such

    items = list(parse_daily_json(load_daily_json(document)))

    assert [item.where for item in items] == [f"entry {n}" for n in range(1, len(entries) + 1)]
    for record in (item for item in items if isinstance(item, PaperRecord)):
        assert record.title and len(record.title) <= TITLE_MAX_CHARS
        for text in (record.title, record.abstract, *record.authors):
            assert clean_text(text) == text and not SURROGATE.search(text)
        assert 0 <= record.upvotes <= 2**31 - 1


good_entry = st.builds(
    lambda number, title: {"paper": {"id": f"2401.{number:05d}", "title": title, "summary": "x"}},
    st.integers(min_value=0, max_value=99999),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=80),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(good_entry, st.lists(json_values, max_size=2)), min_size=1, max_size=6))
def test_good_entries_are_kept_beside_any_bad_ones(groups):
    entries = [entry for good, bad in groups for entry in (good, *bad)]

    titles = [item.title for item in parse_daily_json(entries) if isinstance(item, PaperRecord)]

    remaining = iter(titles)
    assert all(any(title == good["paper"]["title"] for title in remaining) for good, _ in groups)


@settings(max_examples=300)
@given(st.binary(max_size=300) | any_text.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_load_as_entries_or_fail_as_not_daily_json(data):
    try:
        entries = load_daily_json(data)
    except DailyJsonError as error:
        assert str(error)
    else:
        assert isinstance(entries, list)


def test_a_document_nested_too_deeply_is_not_daily_json_rather_than_a_recursion_error():
    with pytest.raises(DailyJsonError, match="nested too deeply"):
        load_daily_json(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.django_db
def test_a_lone_surrogate_escape_is_stored_as_a_replacement_character(tmp_path):
    path = tmp_path / "papers.json"
    path.write_bytes(rb'[{"paper": {"title": "Broken \ud83d Emoji", "summary": "A \udfff b"}}]')

    run = ingest(str(path))

    assert run.status == IngestRun.Status.SUCCEEDED, run.error
    assert Paper.objects.get().title == "Broken \ufffd Emoji"
