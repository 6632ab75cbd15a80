"""Opening what `ingest` is pointed at (a path, `-` for stdin, or an http(s) URL), telling its
format, and decoding it into a stream of records without holding a whole dump in memory."""

import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from digest.ingest import daily_json, daily_text, feeds
from digest.ingest.fetching import Fetched, FetchError, fetch
from digest.ingest.records import PaperRecord, Rejection
from digest.models import FeedState

FORMATS = ("daily-text", "feed", "daily-json")
_SNIFF_BYTES = 64 * 1024
# A dump's line is cut here, as it streams in: an abstract is at most 10,000 characters (40 KB
# of UTF-8); what a longer line holds beyond that is never read into memory.
LINE_MAX_BYTES = 64 * 1024
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
    lines_cut: Callable[[], int] = field(default=lambda: 0)  # lines cut at LINE_MAX_BYTES


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
                lines_cut=lambda: lines.cut,
            )
        else:
            data = stream.read(settings.INGEST_MAX_DOCUMENT_BYTES + 1)
            _check_document_size(len(data), format)
            refuse_binary(data)
            yield _whole_document(format, data, fingerprint)


def _check_document_size(size: int, format: str) -> None:
    limit = settings.INGEST_MAX_DOCUMENT_BYTES
    if size > limit:
        raise SourceError(
            f"a {format} document is parsed whole: this one is over {limit:,} bytes "
            "(INGEST_MAX_DOCUMENT_BYTES)"
        )


@contextlib.contextmanager
def _open_bytes(source: str) -> Iterator[tuple[BinaryIO, str, int]]:
    """A buffered binary stream over the source, its SHA-256, and its size. Standard input is
    spooled to a temporary file first: it can only be read once, and the digest comes first."""
    if source == "-":
        with tempfile.TemporaryFile() as spool:
            _spool(sys.stdin.buffer, spool, settings.INGEST_MAX_SOURCE_BYTES)
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


def _spool(source: BinaryIO, spool: BinaryIO, limit: int) -> None:
    copied = 0
    while chunk := source.read(1 << 20):
        copied += len(chunk)
        if copied > limit:
            raise SourceError(_over_source_limit(limit))
        spool.write(chunk)


def _over_source_limit(limit: int) -> str:
    return f"the input is over {limit:,} bytes (INGEST_MAX_SOURCE_BYTES)"


@contextlib.contextmanager
def _open_path(file: BinaryIO) -> Iterator[tuple[BinaryIO, str, int]]:
    if os.fstat(file.fileno()).st_size > settings.INGEST_MAX_SOURCE_BYTES:
        raise SourceError(_over_source_limit(settings.INGEST_MAX_SOURCE_BYTES))
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
    and why (the lines before it are given out: they are text). A line longer than
    `line_max_bytes` is cut there as it streams in (at a whole character), counted in `cut`."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        chunk_bytes: int = _SNIFF_BYTES,
        line_max_bytes: int = LINE_MAX_BYTES,
    ) -> None:
        self.stream = stream
        self.chunk_bytes = chunk_bytes
        self.line_max_bytes = line_max_bytes
        self.position = 0  # bytes given out as lines
        self.line_number = 0  # lines given out
        self.refusal = ""
        self.cut = 0  # lines cut at line_max_bytes

    def __iter__(self) -> Iterator[str]:
        line = _LineBuffer(self.line_max_bytes)  # the line the chunks so far did not finish
        chunk_offset = 0
        first = True
        while chunk := self.stream.read(self.chunk_bytes):
            found = binary_start(chunk)
            pieces = (chunk[: found[0]] if found else chunk).split(b"\n")
            for piece in pieces[:-1]:
                line.add(piece)
                yield from self._finished(line, first, ended=True)
                first = False
            line.add(pieces[-1])  # unfinished, or the line binary starts in (then lost)
            if found:
                start, why = found
                # The unfinished line's CRs end lines too (all but a last one, which may yet
                # have been the first half of a CRLF).
                pending = line.take()
                line_ends = pending.count(b"\r") - pending.endswith(b"\r")
                self.refusal = _not_text(
                    chunk_offset + start, self.line_number + 1 + line_ends, why
                )
                return
            chunk_offset += len(chunk)
        if line.size:
            yield from self._finished(line, first, ended=False)

    def _finished(self, line: "_LineBuffer", first: bool, *, ended: bool) -> Iterator[str]:
        raw = line.take()
        self.position += line.size + ended
        if line.was_cut:
            self.cut += 1
        line.clear()
        yield from self._decoded(raw, first)

    def _decoded(self, raw: bytes, first: bool) -> Iterator[str]:
        text = _decode(raw)
        if first:
            text = text.removeprefix("\ufeff")
        text = text.rstrip("\r")
        for line in text.split("\r") if "\r" in text else (text,):  # old Mac line ends
            self.line_number += 1
            yield line


class _LineBuffer:
    """The pieces of one line, joined once when it ends (joining at every chunk made a long
    line quadratic), keeping no more than `max_bytes` of it."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.clear()

    def clear(self) -> None:
        self.pieces: list[bytes] = []
        self.kept = 0
        self.size = 0  # the whole line's bytes, kept or not
        self.was_cut = False

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        room = self.max_bytes - self.kept
        if len(piece) > room:
            piece, self.was_cut = piece[:room], True
        if piece:
            self.pieces.append(piece)
            self.kept += len(piece)

    def take(self) -> bytes:
        raw = b"".join(self.pieces)
        return _whole_characters(raw) if self.was_cut else raw


def _whole_characters(raw: bytes) -> bytes:
    """A line cut in the middle of a UTF-8 character loses that character's first bytes too,
    or the whole line would decode as Windows-1252."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data":
            return raw[: error.start]
    return raw


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
            lines = DecodedLines(io.BytesIO(data))
            items = daily_text.parse_daily_text(lines)
        items = iter(list(items))  # a document that cannot be read fails here, before writing
    except (feeds.FeedError, daily_json.DailyJsonError) as error:
        raise SourceError(str(error)) from error
    opened = Input(format, items, fingerprint, size=len(data), position=lambda: len(data))
    if format == "daily-text":
        opened.lines_cut = lambda: lines.cut
    return opened


def _open_url(url: str, format: str) -> Input:
    """One conditional GET through the safe fetcher; the format from the URL, the answer's
    Content-Type or (for `auto`) a feed."""
    state = FeedState.objects.filter(url=url).first()
    try:
        fetched = fetch(
            url,
            etag=state.etag if state else "",
            last_modified=state.last_modified if state else "",
        )
    except FetchError as error:
        raise SourceError(str(error)) from error
    if format == "auto":
        format = "daily-json" if _is_json(url, fetched) else "feed"
    if fetched.status == 304:
        return Input(
            format,
            iter(()),
            "",
            note="not modified since the last poll",
            remember=lambda: FeedState.objects.filter(url=url).update(checked_at=timezone.now()),
        )

    def remember() -> None:
        validators = {
            "etag": fetched.headers.get("etag", "")[:500],
            "last_modified": fetched.headers.get("last-modified", "")[:100],
        }
        FeedState.objects.update_or_create(url=url, defaults=validators)

    data = fetched.body
    _check_document_size(len(data), format)
    if format == "feed":
        try:
            parsed = feeds.parse_feed_bytes(data, fetched.headers.get("content-type", ""))
            records = list(feeds.parse_feed(parsed))
        except feeds.FeedError as error:
            raise SourceError(str(error)) from error
        return Input("feed", iter(records), _records_fingerprint(records), remember=remember)
    fingerprint = hashlib.sha256(data).hexdigest()[:32]
    _check_not_empty(data[:_SNIFF_BYTES])
    refuse_binary(data)
    opened = _whole_document(format, data, fingerprint)
    opened.remember = remember
    return opened


def _is_json(url: str, fetched: Fetched) -> bool:
    """A `.json` path, or an API path without the suffix answering JSON."""
    content_type = fetched.headers.get("content-type", "").lower()
    return url.split("?")[0].endswith(".json") or "json" in content_type


def _records_fingerprint(items: list[PaperRecord | Rejection]) -> str:
    digest = hashlib.sha256()
    for item in items:
        if isinstance(item, PaperRecord):
            parts = (item.arxiv_id or "", str(item.arxiv_version or ""), item.title, item.abstract)
            digest.update("\x1f".join(parts).encode() + b"\x1e")
    return digest.hexdigest()[:32]
