"""Fetching a source over http(s) without trusting it: one deadline for the whole fetch, a cap
on the decompressed size, a few redirects, http(s) only, and no private, loopback, link-local or
cloud-metadata address on any hop unless the operator lists the host.

Hand-written on http.client because urllib3 and feedparser resolve every redirect's host again
themselves (so the address checked is not the one connected to) and time each socket read, not
the fetch (so a server dripping a byte a second is never cut off).
"""

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings

USER_AGENT = "Paperboy/0.1 (+https://github.com/paperboy; daily research digest)"
_REDIRECTS = {301, 302, 303, 307, 308}
_READ_BYTES = 64 * 1024
_DECODED_PIECE_BYTES = 1 << 20  # the most one zlib call may give out
_CLOUD_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class FetchError(Exception):
    """The source could not be fetched; the message says what, where and why in one line."""


@dataclass
class Fetched:
    url: str  # where the body came from, after redirects
    status: int  # 200-299, or 304: not modified (then the body is empty)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


def fetch(url: str, *, etag: str = "", last_modified: str = "") -> Fetched:
    """GET the URL (conditionally, with the validators it answered last time) within the
    FETCH_* bounds; FetchError otherwise, saying which bound or which address refused it."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Connection": "close"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = _Deadline(settings.FETCH_TIMEOUT_SECONDS)
    try:
        current = url
        for hop in range(settings.FETCH_MAX_REDIRECTS + 1):
            what = f"cannot fetch {url}" + (f" (redirected to {current})" if hop else "")
            fetched = _fetch_once(current, headers, deadline, what=what, original=url)
            if fetched is not None:
                return fetched
            current = deadline.location
        raise FetchError(
            f"cannot fetch {url}: more than {settings.FETCH_MAX_REDIRECTS} redirects "
            "(FETCH_MAX_REDIRECTS)"
        )
    finally:
        deadline.stop()


def _fetch_once(
    url: str, headers: dict[str, str], deadline: "_Deadline", *, what: str, original: str
) -> Fetched | None:
    """One hop: the answer, or None after setting `deadline.location` to the redirect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{what}: only http and https URLs are fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise FetchError(f"{what}: {error}") from error
    addresses = _checked_addresses(parts.hostname, port, what=what)
    connection = None
    try:
        connection = _PinnedConnection(parts, port, addresses, deadline)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        answer = {name.lower(): value for name, value in response.getheaders()}
        if response.status in _REDIRECTS and answer.get("location"):
            location = urljoin(url, answer["location"].strip())
            if urlsplit(location).scheme not in ("http", "https"):
                raise FetchError(f"{what}: redirect to {location[:200]} refused (not http(s))")
            deadline.location = location
            return None
        if response.status == 304:
            return Fetched(url, 304, headers=answer)
        if response.status >= 300:
            raise FetchError(f"{original} answered HTTP {response.status}")
        return Fetched(url, response.status, _read_body(response, answer, deadline, what), answer)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as error:
        if deadline.passed():
            raise FetchError(f"{what}: {deadline.message()}") from error
        raise FetchError(f"{what}: {type(error).__name__}: {error}") from error
    finally:
        if connection is not None:
            connection.close()


def _checked_addresses(host: str, port: int, *, what: str) -> list[tuple]:
    """The host's addresses, every one of them public, unless the operator listed the host."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise FetchError(f"{what}: cannot resolve {host}: {error}") from error
    if _operator_allows(host):
        return addresses
    for *_, sockaddr in addresses:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if kind := forbidden_kind(address):
            named = f"{host} is {address}," if host != str(address) else f"{address} is"
            raise FetchError(
                f"{what}: refused: {named} a {kind} address "
                "(list the host in FETCH_ALLOWED_PRIVATE_HOSTS to fetch it)"
            )
    return addresses


def forbidden_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """What kind of address a fetch must not reach ("" for a public one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _CLOUD_METADATA:
        return "cloud-metadata"
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "" if address.is_global else "non-public"


def _operator_allows(host: str) -> bool:
    allowed = {name.strip().lower().strip("[]") for name in settings.FETCH_ALLOWED_PRIVATE_HOSTS}
    return host.lower().rstrip(".") in allowed


class _Deadline:
    """One deadline for the whole fetch: on expiry the socket in use is shut down, which ends
    whatever read is waiting on it, however slowly the server drips."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = False
        self.location = ""
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.ends_at - time.monotonic()
        if left <= 0 or self.expired:
            raise TimeoutError(self.message())
        return left

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.ends_at

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut_down(sock)

    def message(self) -> str:
        return f"timed out: no whole answer within {self.seconds:g} s (FETCH_TIMEOUT_SECONDS)"

    def stop(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._socket is not None:
                _shut_down(self._socket)


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected yet, or closed already
        sock.shutdown(socket.SHUT_RDWR)


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTP(S) connection to the addresses that were checked, never to a fresh lookup;
    TLS still verifies the certificate against the host name."""

    def __init__(self, parts, port: int, addresses: list[tuple], deadline: _Deadline) -> None:
        super().__init__(parts.hostname, port, timeout=deadline.remaining())
        self.tls = parts.scheme == "https"
        # http.client names the default port after the class (443); the Host header needs it.
        self.default_port = 443 if self.tls else 80
        self.addresses = addresses
        self.deadline = deadline

    def connect(self) -> None:
        error: OSError = OSError("no address")
        for family, kind, proto, _, sockaddr in self.addresses:
            sock = socket.socket(family, kind, proto)
            self.deadline.watch(sock)
            sock.settimeout(self.deadline.remaining())
            try:
                sock.connect(sockaddr)
                break
            except OSError as failure:
                sock.close()
                error = failure
        else:
            raise error
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self.deadline.watch(sock)
        self.sock = sock


def _read_body(
    response: http.client.HTTPResponse, headers: dict[str, str], deadline: _Deadline, what: str
) -> bytes:
    """The body, decompressed as it streams in, refused past FETCH_MAX_BYTES decompressed."""
    limit = settings.FETCH_MAX_BYTES
    too_large = f"{what}: the answer is over {limit:,} bytes (FETCH_MAX_BYTES)"
    encoding = headers.get("content-encoding", "identity").strip().lower()
    declared = headers.get("content-length", "")
    if encoding == "identity" and declared.isdigit() and int(declared) > limit:
        raise FetchError(too_large)
    body = bytearray()
    for piece in _decoded(_raw_chunks(response, deadline), encoding, what):
        body += piece
        if len(body) > limit:
            raise FetchError(too_large + (" decompressed" if encoding != "identity" else ""))
    return bytes(body)


def _raw_chunks(response: http.client.HTTPResponse, deadline: _Deadline) -> Iterator[bytes]:
    while chunk := response.read(_READ_BYTES):
        deadline.remaining()  # raises once the deadline has passed
        yield chunk
    if deadline.passed():  # the shut-down socket reads as the end of the answer
        raise TimeoutError(deadline.message())


def _decoded(chunks: Iterator[bytes], encoding: str, what: str) -> Iterator[bytes]:
    """Identity, gzip or deflate, a megabyte at most out of one zlib call (max_length), so a
    small bomb cannot blow up in memory before the caller has counted it."""
    if encoding in ("identity", ""):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"{what}: unsupported Content-Encoding {encoding[:40]!r}")
    decoder = None
    try:
        for chunk in chunks:
            if decoder is None:
                decoder = zlib.decompressobj(_window_bits(encoding, chunk))
            data = chunk
            while data:
                yield decoder.decompress(data, _DECODED_PIECE_BYTES)
                data = decoder.unconsumed_tail
                if decoder.eof and decoder.unused_data:  # the next gzip member
                    data = decoder.unused_data
                    decoder = zlib.decompressobj(_window_bits(encoding, data))
        if decoder is not None:
            yield decoder.flush()
    except zlib.error as error:
        raise FetchError(f"{what}: the {encoding} body is corrupt: {error}") from error


def _window_bits(encoding: str, start: bytes) -> int:
    if encoding != "deflate":
        return 16 + zlib.MAX_WBITS
    # "deflate" is meant to be zlib-wrapped; some servers send the raw stream.
    wrapped = (
        len(start) >= 2 and start[0] & 0x0F == 8 and int.from_bytes(start[:2], "big") % 31 == 0
    )
    return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
