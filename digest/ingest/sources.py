"""Opening what `ingest` is pointed at (a path, `-` for stdin, or an http(s) URL), telling its
format, and decoding it into a stream of records without holding a whole dump in memory."""

import contextlib
import hashlib
import io
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from digest.ingest import daily_json, daily_text, feeds
from digest.ingest.records import PaperRecord, Rejection
from digest.models import FeedState

FORMATS = ("daily-text", "feed", "daily-json")
_SNIFF_BYTES = 64 * 1024
_FETCH_TIMEOUT_SECONDS = 60
_FEED_MARKER = re.compile(rb"<(\?xml|rss|feed|rdf:rdf)\b")  # else "<b>A title</b>" is a dump


class SourceError(Exception):
    """The source could not be read at all; the message is the one-line reason."""


@dataclass
class Input:
    format: str
    items: Iterator[PaperRecord | Rejection]
    fingerprint: str  # the same input always gives the same fingerprint
    size: int | None = None  # bytes, when known, for progress
    position: Callable[[], int] = lambda: 0  # bytes read so far
    note: str = ""  # e.g. "not modified since the last poll"
    remember: Callable[[], None] = field(default=lambda: None)  # once the run succeeded
    # Once the items are exhausted: why the rest of the input was refused ("" if it was not).
    refusal: Callable[[], str] = field(default=lambda: "")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@contextlib.contextmanager
def open_input(source: str, *, format: str = "auto") -> Iterator[Input]:
    if format != "auto" and format not in FORMATS:
        raise SourceError(f"unknown format {format!r} (expected auto, {', '.join(FORMATS)})")
    if is_url(source):
        yield _open_url(source, format)
        return
    with _open_bytes(source) as (stream, fingerprint, size):
        head = stream.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
        _check_not_empty(head)
        format = _sniff(head) if format == "auto" else format
        if format == "daily-text":
            lines = DecodedLines(stream)
            yield Input(
                format,
                daily_text.parse_daily_text(lines),
                fingerprint,
                size=size,
                position=lambda: lines.position,
                refusal=lambda: lines.refusal,
            )
        else:
            data = stream.read()
            refuse_binary(data)
            yield _whole_document(format, data, fingerprint)


@contextlib.contextmanager
def _open_bytes(source: str) -> Iterator[tuple[BinaryIO, str, int]]:
    """A buffered binary stream over the source, its SHA-256, and its size. Standard input is
    spooled to a temporary file first: it can only be read once, and the digest comes first."""
    if source == "-":
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.seek(0)
            with _open_path(spool) as opened:
                yield opened
        return
    try:
        file = Path(source).open("rb", buffering=_SNIFF_BYTES)  # noqa: SIM115 (closed below)
    except FileNotFoundError as error:
        raise SourceError(f"no such file: {source}") from error
    except IsADirectoryError as error:
        raise SourceError(f"is a directory, not a file: {source}") from error
    except PermissionError as error:
        raise SourceError(f"permission denied: {source}") from error
    with file, _open_path(file) as opened:
        yield opened


@contextlib.contextmanager
def _open_path(file: BinaryIO) -> Iterator[tuple[BinaryIO, str, int]]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    yield file, digest.hexdigest()[:32], size


def _check_not_empty(head: bytes) -> None:
    if not head.strip().lstrip(b"\xef\xbb\xbf").strip():
        raise SourceError("the input is empty")


# Text has no NUL and few C0 control characters (tab, line ends and form feed are text).
_CONTROL_BYTES = bytes([*range(9), *range(14, 32)])
_NOT_CONTROL_BYTES = bytes(byte for byte in range(256) if byte not in _CONTROL_BYTES)
_CONTROL = re.compile(b"[" + re.escape(_CONTROL_BYTES) + b"]")
# Where binary starts: a control byte with two more within the next 64 bytes (random bytes have
# about seven in 64; a stray control character in text stands alone).
_BINARY_START = re.compile(
    b"[" + re.escape(_CONTROL_BYTES) + b"](?=(?s:.{0,63}?[" + re.escape(_CONTROL_BYTES) + b"]){2})"
)
_CONTROLS_TOLERATED = 8  # in a chunk: more than this and more than 1 byte in 20 is binary


def binary_start(chunk: bytes) -> tuple[int, str] | None:
    """Where binary data starts in a chunk of input (64 KB), and why it is not text; None when
    the chunk is text."""
    controls = len(chunk.translate(None, _NOT_CONTROL_BYTES))
    has_nul = b"\x00" in chunk
    if not has_nul and (controls <= _CONTROLS_TOLERATED or controls <= len(chunk) // 20):
        return None
    dense = _BINARY_START.search(chunk)
    starts = [dense.start()] if dense else []
    if has_nul:
        starts.append(chunk.index(b"\x00"))
    start = min(starts) if starts else _CONTROL.search(chunk).start()
    # Text before random bytes is cut where UTF-8 stops making sense, when that is just before.
    window = max(0, start - 256)
    while window < start and 0x80 <= chunk[window] < 0xC0:  # not in the middle of a character
        window += 1
    try:
        chunk[window:start].decode("utf-8")
    except UnicodeDecodeError as error:
        start = window + error.start
    return start, "NUL bytes" if has_nul else f"{controls:,} control bytes in {len(chunk):,}"


def refuse_binary(data: bytes) -> None:
    """Raise SourceError saying where and why when any part of a whole document is not text."""
    for offset in range(0, len(data), _SNIFF_BYTES):
        found = binary_start(data[offset : offset + _SNIFF_BYTES])
        if found:
            start, why = found
            line = data.count(b"\n", 0, offset + start) + 1
            raise SourceError(_not_text(offset + start, line, why))


def _not_text(offset: int, line: int, why: str) -> str:
    return f"not text: binary data from byte {offset:,} (line {line:,}) on ({why})"


def _sniff(head: bytes) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"<" and _FEED_MARKER.search(head[:4096].lower()):
        return "feed"
    if start in (b"[", b"{"):
        return "daily-json"
    return "daily-text"


class DecodedLines:
    """Lines of text from a binary stream: UTF-8 (with or without BOM), else Windows-1252/Latin-1
    line by line; CR LF and CR line ends. Every 64 KB is checked before any line of it is given
    out: from the first byte of binary data on, nothing more is read, and `refusal` says where
    and why (the lines before it are given out: they are text)."""

    def __init__(self, stream: BinaryIO, *, chunk_bytes: int = _SNIFF_BYTES) -> None:
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.position = 0  # bytes given out as lines
        self.line_number = 0  # lines given out
        self.refusal = ""

    def __iter__(self) -> Iterator[str]:
        carry: list[bytes] = []  # the start of a line the chunks so far did not finish
        chunk_offset = 0
        first = True
        while chunk := self.stream.read(self.chunk_bytes):
            found = binary_start(chunk)
            lines = (chunk[: found[0]] if found else chunk).split(b"\n")
            lines[0] = b"".join([*carry, lines[0]])
            carry = [lines.pop()]  # unfinished, or the line binary starts in (then lost)
            for raw in lines:
                self.position += len(raw) + 1
                yield from self._decoded(raw, first)
                first = False
            if found:
                start, why = found
                self.refusal = _not_text(chunk_offset + start, self.line_number + 1, why)
                return
            chunk_offset += len(chunk)
        if last := b"".join(carry):
            self.position += len(last)
            yield from self._decoded(last, first)

    def _decoded(self, raw: bytes, first: bool) -> Iterator[str]:
        text = _decode(raw)
        if first:
            text = text.removeprefix("\ufeff")
        text = text.rstrip("\r")
        for line in text.split("\r") if "\r" in text else (text,):  # old Mac line ends
            self.line_number += 1
            yield line


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def _whole_document(format: str, data: bytes, fingerprint: str) -> Input:
    """Feeds and JSON are small: parsed whole."""
    try:
        if format == "feed":
            items: Iterable = feeds.parse_feed(feeds.parse_feed_bytes(data))
        elif format == "daily-json":
            items = daily_json.parse_daily_json(daily_json.load_daily_json(data))
        else:
            items = daily_text.parse_daily_text(DecodedLines(io.BytesIO(data)))
        items = iter(list(items))  # a document that cannot be read fails here, before writing
    except (feeds.FeedError, daily_json.DailyJsonError) as error:
        raise SourceError(str(error)) from error
    return Input(format, items, fingerprint, size=len(data), position=lambda: len(data))


def _open_url(url: str, format: str) -> Input:
    if format == "feed" or (format == "auto" and not url.split("?")[0].endswith(".json")):
        try:
            fetched = feeds.fetch_feed(url)
            if format == "auto" and _is_json_answer(fetched):
                return _open_url(url, "daily-json")  # e.g. an API path without ".json"
            if fetched.parsed is None:
                return Input(
                    "feed",
                    iter(()),
                    "",
                    note="not modified since the last poll",
                    remember=lambda: feeds.remember_feed(url, fetched),
                )
            records = list(feeds.parse_feed(fetched.parsed))
        except feeds.FeedError as error:
            raise SourceError(str(error)) from error
        fingerprint = _records_fingerprint(records)
        return Input(
            "feed", iter(records), fingerprint, remember=lambda: feeds.remember_feed(url, fetched)
        )
    data, validators = _fetch(url)
    if data is None:
        return Input(format, iter(()), "", note="not modified since the last poll")
    fingerprint = hashlib.sha256(data).hexdigest()[:32]
    _check_not_empty(data[:_SNIFF_BYTES])
    refuse_binary(data)
    opened = _whole_document(format if format != "auto" else "daily-json", data, fingerprint)
    opened.remember = lambda: FeedState.objects.update_or_create(url=url, defaults=validators)
    return opened


def _is_json_answer(fetched: feeds.FetchedFeed) -> bool:
    if fetched.parsed is None or fetched.parsed.entries:
        return False
    return "json" in fetched.parsed.get("headers", {}).get("content-type", "")


def _fetch(url: str) -> tuple[bytes | None, dict[str, str]]:
    """A conditional GET for JSON and text sources, remembered like a feed's."""
    state = FeedState.objects.filter(url=url).first()
    request = urllib.request.Request(url, headers={"User-Agent": feeds.USER_AGENT})
    if state and state.etag:
        request.add_header("If-None-Match", state.etag)
    if state and state.last_modified:
        request.add_header("If-Modified-Since", state.last_modified)
    try:
        with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT_SECONDS) as response:
            data = response.read()
            validators = {
                "etag": response.headers.get("ETag", ""),
                "last_modified": response.headers.get("Last-Modified", ""),
            }
    except urllib.error.HTTPError as error:
        if error.code == 304:
            return None, {}
        raise SourceError(f"{url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise SourceError(f"cannot fetch {url}: {error}") from error
    return data, validators


def _records_fingerprint(items: list[PaperRecord | Rejection]) -> str:
    digest = hashlib.sha256()
    for item in items:
        if isinstance(item, PaperRecord):
            parts = (item.arxiv_id or "", str(item.arxiv_version or ""), item.title, item.abstract)
            digest.update("\x1f".join(parts).encode() + b"\x1e")
    return digest.hexdigest()[:32]
