"""Reading an input as text: the binary detector and the chunked line reader."""

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest.daily_text import parse_daily_text
from digest.ingest.records import PaperRecord
from digest.ingest.sources import DecodedLines, binary_start
from digest.ingest.sources import _decode as decode
from tests.unicode_text import any_text

CHUNK = 64 * 1024
# What text is made of: every character but the C0 controls other than tab and line ends.
text_character = st.characters(
    exclude_categories=["Cs"],
    exclude_characters="".join(map(chr, [*range(9), *range(14, 32)])),
)
text = st.text(text_character, max_size=2000)
binary = st.binary(min_size=1, max_size=500).map(lambda data: data + b"\x00")


@settings(max_examples=500)
@given(text, st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]))
def test_text_in_any_usual_encoding_is_never_taken_for_binary(content, encoding):
    encoded = content.encode(encoding, errors="ignore")[:CHUNK]
    assert binary_start(encoded) is None


@settings(max_examples=500)
@given(text, binary)
def test_binary_after_text_is_found_where_it_starts(content, junk):
    encoded = content.encode()[: CHUNK - len(junk)]
    encoded = encoded.decode(errors="ignore").encode()  # whole characters only
    found = binary_start(encoded + junk)
    assert found is not None
    start, why = found
    assert len(encoded) <= start <= len(encoded) + junk.index(b"\x00")
    assert why


@settings(max_examples=500)
@given(st.binary(max_size=CHUNK // 8) | any_text.map(lambda text: text.encode("utf-8", "replace")))
def test_any_bytes_are_text_or_binary_from_a_place_inside_them(data):
    found = binary_start(data)
    assert found is None or (0 <= found[0] <= len(data) and found[1])


def reference_lines(data: bytes) -> list[str]:
    """What the reader gave before it read in chunks: line by line, through the same decoding."""
    lines = []
    for number, raw in enumerate(io.BytesIO(data)):
        line = decode(raw)
        line = line.removeprefix("\ufeff") if number == 0 else line
        lines.extend(line.rstrip("\r\n").split("\r"))
    return lines


@settings(max_examples=300)
@given(
    st.lists(text, max_size=20).map(lambda lines: "\n".join(lines).encode()),
    st.integers(min_value=1, max_value=300),
)
def test_lines_come_out_whole_whatever_the_chunk_size(data, chunk_bytes):
    lines = DecodedLines(io.BytesIO(data), chunk_bytes=chunk_bytes)
    assert list(lines) == reference_lines(data)
    assert lines.refusal == "" and lines.position == len(data)


ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6
title = st.text(st.characters(categories=["L", "N"]), min_size=3, max_size=60).filter(
    lambda title: title.lower() not in {"new", "subscribe"}  # page chrome, not a title
)


def as_the_reader_decodes(line: bytes) -> str:
    """A line as DecodedLines decodes it: UTF-8, else Windows-1252, else Latin-1."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            pass
    return line.decode("latin-1")


@settings(max_examples=200, deadline=None)
@given(
    titles=st.lists(title, min_size=1, max_size=12, unique=True),
    junk=binary,
    chunk_bytes=st.sampled_from([7, 100, 1000, CHUNK]),
)
def test_records_before_binary_are_kept_and_nothing_after_it_is_read(titles, junk, chunk_bytes):
    dump = "".join(f"{title}\n{ABSTRACT}\n" for title in titles).encode()
    lines = DecodedLines(io.BytesIO(dump + junk), chunk_bytes=chunk_bytes)

    records = [item for item in parse_daily_text(lines) if isinstance(item, PaperRecord)]

    assert [record.title for record in records[: len(titles)]] == titles
    assert all(record.abstract == ABSTRACT.strip() for record in records[: len(titles)])
    where = re.match(r"not text: binary data from byte ([\d,]+) \(line ([\d,]+)\)", lines.refusal)
    offset, line = (int(number.replace(",", "")) for number in where.groups())
    assert len(dump) <= offset <= len(dump) + junk.index(b"\x00")
    # Whole text lines of the junk before the binary are text, and may make records of their own.
    text_before = "\n".join(map(as_the_reader_decodes, junk[: offset - len(dump)].split(b"\n")))
    assert {record.title for record in records[len(titles) :]} <= set(text_before.splitlines())
    # Lines are counted as the reader counts them: CRLF, CR or LF ends one (a CR at the very end
    # may yet be the first half of a CRLF, so it ends no line yet).
    first_line = 2 * len(titles) + 1
    assert line == first_line + len(re.findall(r"\r\n|\r(?!$)|\n", text_before))
