"""Bounds on what a source may put in a paper (issue 22, probes 3, 4 and 10): over-long fields
cut at a word and counted on the run, over-long lines cut as they stream in, oversized inputs
refused, and only http(s) links kept."""

import io
import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest import ingest
from digest.ingest.feeds import parse_feed, parse_feed_bytes
from digest.ingest.records import (
    ABSTRACT_MAX_CHARS,
    AUTHOR_MAX_CHARS,
    AUTHORS_MAX,
    CATEGORIES_MAX,
    TITLE_MAX_CHARS,
    URL_MAX_CHARS,
    PaperRecord,
    bound_record,
    clean_text,
    cut_at_word,
    safe_http_url,
)
from digest.ingest.sources import DecodedLines
from digest.models import IngestRun, Paper
from tests.unicode_text import any_text

ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6
WORDS = "attention is all you need again " * 400_000  # 12.8 MB, spaces every few letters


def write(tmp_path, content: bytes, name: str = "dump.txt") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.django_db
def test_a_huge_abstract_in_a_dump_is_cut_at_a_word_and_the_papers_beside_it_kept(tmp_path):
    dump = f"First Paper\n{ABSTRACT}\nHuge Paper\n{WORDS}\nLast Paper\n{ABSTRACT}\n".encode()

    run = ingest(write(tmp_path, dump))

    assert (run.status, run.created) == (IngestRun.Status.SUCCEEDED, 3)
    huge = Paper.objects.get(title="Huge Paper").abstract
    assert len(huge) <= ABSTRACT_MAX_CHARS and huge.endswith("\u2026")
    assert WORDS.startswith(huge.removesuffix("\u2026")) and huge[-2] != " "
    assert WORDS[len(huge) - 1] == " "  # the cut fell between two words
    assert Paper.objects.get(title="Last Paper").abstract == ABSTRACT.strip()
    assert run.cut_counts == {"lines": 1, "abstract": 1}


@pytest.mark.django_db
def test_a_huge_summary_in_daily_papers_json_is_cut_and_counted(tmp_path):
    entries = [
        {"paper": {"id": "2401.00001", "title": "Huge", "summary": WORDS[:5_800_000]}},
        {"paper": {"id": "2401.00002", "title": "Small", "summary": "Short."}},
    ]
    run = ingest(write(tmp_path, json.dumps(entries).encode(), "papers.json"))
    assert (run.status, run.created, run.cut_counts) == (
        IngestRun.Status.SUCCEEDED,
        2,
        {"abstract": 1},
    )
    assert len(Paper.objects.get(title="Huge").abstract) <= ABSTRACT_MAX_CHARS


@pytest.mark.django_db
def test_a_feed_with_too_many_authors_keeps_the_count_and_the_first_names(tmp_path):
    authors = "".join(f"<author><name>Author {n}</name></author>" for n in range(AUTHORS_MAX + 50))
    feed = (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><entry>"
        f"<title>Collaboration Paper</title><summary>S.</summary>{authors}</entry></feed>"
    )
    run = ingest(write(tmp_path, feed.encode(), "feed.xml"))
    paper = Paper.objects.get()
    assert (len(paper.authors), paper.author_count) == (AUTHORS_MAX, AUTHORS_MAX + 50)
    assert run.cut_counts == {"authors": 1}


def test_a_long_line_is_cut_as_it_streams_and_the_next_lines_come_whole():
    data = b"before\n" + "\u00e9".encode() * 5_000 + b"\nafter\n"
    lines = DecodedLines(io.BytesIO(data), chunk_bytes=1000, line_max_bytes=4001)

    before, long, after = list(lines)

    assert (before, after) == ("before", "after")
    assert long == "\u00e9" * 2000  # 4,001 bytes end inside a character: it is left out
    assert (lines.cut, lines.position) == (1, len(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=300), max_size=10),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=1, max_value=500),
)
def test_lines_are_cut_at_the_bound_whatever_the_chunks(texts, line_max_bytes, chunk_bytes):
    data = "\n".join(text.replace("\r", "") for text in texts).encode("utf-8", "surrogatepass")
    lines = DecodedLines(io.BytesIO(data), chunk_bytes=chunk_bytes, line_max_bytes=line_max_bytes)
    read = list(lines)
    if b"\x00" in data or lines.refusal:  # binary: covered by test_sources
        return
    raw_lines = data.split(b"\n") if data else []
    assert len(read) >= len(raw_lines) - (data.endswith(b"\n") or not data)
    assert lines.cut == sum(len(raw) > line_max_bytes for raw in raw_lines)
    assert lines.position == len(data)


@pytest.mark.django_db
def test_a_file_over_the_source_bound_is_refused_before_it_is_read(tmp_path, settings):
    settings.INGEST_MAX_SOURCE_BYTES = 10_000
    run = ingest(write(tmp_path, f"A Paper\n{ABSTRACT}\n".encode() * 100))
    assert (run.status, run.error) == (
        IngestRun.Status.FAILED,
        "the input is over 10,000 bytes (INGEST_MAX_SOURCE_BYTES)",
    )
    assert Paper.objects.count() == 0


@pytest.mark.django_db
def test_a_feed_document_over_the_document_bound_is_refused(tmp_path, settings):
    settings.INGEST_MAX_DOCUMENT_BYTES = 1_000
    feed = "<?xml version='1.0'?><rss><channel>" + "<item><title>T</title></item>" * 100
    run = ingest(write(tmp_path, (feed + "</channel></rss>").encode(), "feed.xml"))
    assert run.status == IngestRun.Status.FAILED
    assert run.error == (
        "a feed document is parsed whole: this one is over 1,000 bytes (INGEST_MAX_DOCUMENT_BYTES)"
    )


HOSTILE_LINKS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd",
    "//evil.example/x.pdf",
    "/relative.pdf",
    "https:\\\\evil.example",
    "http://",
    "https://example.org/" + "a" * URL_MAX_CHARS,
]


@pytest.mark.django_db
@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_a_feed_link_that_is_not_http_is_dropped_and_counted(tmp_path, link):
    feed = (
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><entry>"
        "<title>Linked Paper</title><summary>S.</summary>"
        f"<link rel='alternate' href='{link.replace('&', '&amp;')}'/>"
        f"<link rel='related' type='application/pdf' title='pdf' href='{link}'/>"
        "</entry></feed>"
    )
    run = ingest(write(tmp_path, feed.encode(), "feed.xml"))
    paper = Paper.objects.get()
    assert (paper.url, paper.pdf_url) == ("", "")
    assert run.cut_counts == {"links": 1}


def test_http_links_of_a_feed_are_kept():
    feed = (
        b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><entry>"
        b"<title>Linked Paper</title><link rel='alternate' href='https://example.org/p'/>"
        b"<link rel='related' type='application/pdf' href='HTTP://example.org/p.pdf'/>"
        b"</entry></feed>"
    )
    [record] = parse_feed(parse_feed_bytes(feed))
    assert (record.url, record.pdf_url, record.cuts) == (
        "https://example.org/p",
        "HTTP://example.org/p.pdf",
        set(),
    )


def test_a_feed_answering_a_file_name_does_not_read_that_file(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><item><title>Secret</title>"
        "</item></channel></rss>"
    )
    parsed = parse_feed_bytes(str(secret).encode())
    assert not parsed.entries


@pytest.mark.parametrize("link", HOSTILE_LINKS[:-1])
def test_safe_http_url_refuses_what_a_browser_would_not_fetch_over_http(link):
    assert safe_http_url(link) == ""


@settings(max_examples=500)
@given(any_text | st.builds("{}://{}/{}".format, any_text, any_text, any_text))
def test_safe_http_url_gives_an_absolute_http_url_or_nothing(value):
    url = safe_http_url(value)
    if url:
        parts = urlsplit(url)
        assert parts.scheme.lower() in ("http", "https") and parts.hostname
        assert url == value.strip(" \t\r\n") and url.isprintable() and " " not in url


@settings(max_examples=500)
@given(any_text, st.integers(min_value=2, max_value=400))
def test_cut_at_word_gives_a_prefix_within_the_bound(value, max_chars):
    text = clean_text(value)
    cut = cut_at_word(text, max_chars)
    assert len(cut) <= max_chars
    if cut != text:
        assert cut.endswith("\u2026") and text.startswith(cut.removesuffix("\u2026"))
        assert len(cut) > max_chars // 2 - 2  # never cut back to a stub


records = st.builds(
    PaperRecord,
    title=any_text.map(clean_text),
    abstract=any_text.map(clean_text),
    authors=st.lists(any_text.map(clean_text), max_size=3) | st.just(["A. Person"] * 600),
    categories=st.lists(any_text.map(clean_text), max_size=25),
    url=any_text,
    pdf_url=any_text,
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_a_bounded_record_fits_every_bound_and_names_what_it_lost(record):
    before = (record.title, record.abstract, list(record.authors), list(record.categories))
    bounded = bound_record(record)
    assert len(bounded.title) <= TITLE_MAX_CHARS and len(bounded.abstract) <= ABSTRACT_MAX_CHARS
    assert len(bounded.authors) <= AUTHORS_MAX
    assert all(len(name) <= AUTHOR_MAX_CHARS for name in bounded.authors)
    assert len(bounded.categories) <= CATEGORIES_MAX
    for url in (bounded.url, bounded.pdf_url):
        assert url == "" or (safe_http_url(url) == url and len(url) <= URL_MAX_CHARS)
    after = (bounded.title, bounded.abstract, bounded.authors, bounded.categories)
    names = ("title", "abstract", "authors", "categories")
    assert {name for name, old, new in zip(names, before, after, strict=True) if old != new} == (
        bounded.cuts - {"links"}
    )
    assert bounded.title_key == type(bounded)(title=bounded.title).title_key
