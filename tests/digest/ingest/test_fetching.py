"""The safe fetcher against hostile servers: gzip bombs, slow drips, redirects to internal
addresses, redirect loops and other schemes (issue 22, probes 5, 6 and 8)."""

import gzip
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest

from digest.ingest import fetching, ingest
from digest.ingest.fetching import FetchError, fetch
from digest.models import IngestRun, Paper
from tests.conftest import QuietHandler, http_server

FEED = (Path(__file__).resolve().parent / "fixtures" / "arxiv-rss2.xml").read_bytes()


def answering(body: bytes, **headers: str) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class Internal:
    """A stand-in for an internal service (Redis, a metadata endpoint) that counts its callers."""

    def __init__(self) -> None:
        self.hits = 0

    def handler(self) -> type[QuietHandler]:
        internal = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                internal.hits += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(FEED.replace(b"Sparse Mixture", b"Internal Secret"))

        return Handler


def redirecting_to(location: str) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.end_headers()

    return Handler


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_a_compressed_feed_is_read_whole(encoding):
    if encoding == "gzip":
        body = gzip.compress(FEED)
    else:
        compressor = zlib.compressobj(wbits=zlib.MAX_WBITS if encoding == "deflate" else -15)
        body = compressor.compress(FEED) + compressor.flush()
    handler = answering(body, Content_Encoding=encoding.split()[-1])
    with http_server(handler) as base:
        run = ingest(f"{base}/rss")
    assert (run.status, run.created) == (IngestRun.Status.SUCCEEDED, 3)


@pytest.mark.django_db
def test_a_gzip_bomb_is_refused_at_the_decompressed_cap_and_nothing_is_stored(settings):
    settings.FETCH_MAX_BYTES = 1_000_000
    bomb = gzip.compress(FEED[:200] + b" " * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    with http_server(answering(bomb, Content_Encoding="gzip")) as base:
        run = ingest(f"{base}/rss")
    assert run.status == IngestRun.Status.FAILED
    assert run.error == (
        f"cannot fetch {base}/rss: the answer is over 1,000,000 bytes (FETCH_MAX_BYTES) "
        "decompressed"
    )
    assert Paper.objects.count() == 0


def test_an_answer_over_the_cap_is_refused_whether_or_not_it_declares_its_length(settings):
    settings.FETCH_MAX_BYTES = 100_000
    body = b"x" * 300_000
    with (
        http_server(answering(body, Content_Length=str(len(body)))) as base,
        pytest.raises(FetchError, match=r"over 100,000 bytes \(FETCH_MAX_BYTES\)$"),
    ):
        fetch(f"{base}/declared")
    with (
        http_server(answering(body)) as base,
        pytest.raises(FetchError, match=r"over 100,000 bytes \(FETCH_MAX_BYTES\)$"),
    ):
        fetch(f"{base}/streamed")


def dripping(where: str, stop: threading.Event) -> type[QuietHandler]:
    """Sends its answer a byte every tenth of a second: never silent long enough for a
    per-read timeout, never done (it gives up after a minute, or when the client has gone)."""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n"

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            fast, slow = (b"", head + FEED) if where == "headers" else (head, FEED)
            self.wfile.write(fast)
            for byte in slow[:600]:
                if stop.is_set():
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)

    return Handler


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_server_dripping_a_byte_at_a_time_is_cut_off_at_the_fetch_deadline(settings, where):
    settings.FETCH_TIMEOUT_SECONDS = 1
    stop = threading.Event()
    with http_server(dripping(where, stop)) as base:
        run = ingest(f"{base}/rss")
        stop.set()
    assert run.status == IngestRun.Status.FAILED
    assert run.error == (
        f"cannot fetch {base}/rss: timed out: no whole answer within 1 s (FETCH_TIMEOUT_SECONDS)"
    )
    assert Paper.objects.count() == 0


@pytest.mark.django_db
def test_a_redirect_to_an_internal_address_is_refused_and_nothing_is_stored(settings):
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = ["localhost"]  # the feed's own host, not 127.0.0.1
    internal = Internal()
    with (
        http_server(internal.handler()) as internal_base,
        http_server(redirecting_to(f"{internal_base}/")) as base,
    ):
        url = base.replace("127.0.0.1", "localhost") + "/rss"
        run = ingest(url)
    assert run.status == IngestRun.Status.FAILED
    host = internal_base.removeprefix("http://").split(":")[0]
    assert run.error == (
        f"cannot fetch {url} (redirected to {internal_base}/): refused: {host} is a loopback "
        "address (list the host in FETCH_ALLOWED_PRIVATE_HOSTS to fetch it)"
    )
    assert internal.hits == 0
    assert Paper.objects.count() == 0


@pytest.mark.django_db
def test_a_redirect_the_operator_allows_is_followed(settings):
    internal = Internal()
    with (
        http_server(internal.handler()) as internal_base,
        http_server(redirecting_to(f"{internal_base}/")) as base,
    ):
        run = ingest(f"{base}/rss")
    assert (run.status, run.created, internal.hits) == (IngestRun.Status.SUCCEEDED, 3, 1)
    assert Paper.objects.filter(title__startswith="Internal Secret").count() == 1


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://127.0.0.1:9/rss", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud-metadata"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254 is a cloud-metadata"),
        ("http://10.1.2.3/feed", "10.1.2.3 is a private address"),
        ("http://[::1]:9/rss", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/rss", "::ffff:127.0.0.1 is ::ffff:7f00:1, a loopback address"),
        ("http://0.0.0.0:9/rss", "0.0.0.0 is a unspecified address"),
        ("http://224.0.0.1/rss", "224.0.0.1 is a multicast address"),
        ("http://100.64.0.1/rss", "100.64.0.1 is a non-public address"),
        ("http://169.254.1.1/rss", "169.254.1.1 is a link-local address"),
    ],
)
def test_no_private_loopback_link_local_or_metadata_address_is_fetched(settings, url, refusal):
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = []
    with pytest.raises(FetchError, match="refused: " + refusal.replace(".", r"\.")):
        fetch(url)


def test_a_host_name_resolving_to_a_private_address_is_refused(settings, monkeypatch):
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = []
    monkeypatch.setattr(
        fetching.socket, "getaddrinfo", resolving({"feeds.example.org": "10.0.0.5"})
    )
    with pytest.raises(FetchError, match=r"refused: feeds\.example\.org is 10\.0\.0\.5, a private"):
        fetch("https://feeds.example.org/rss")


def resolving(names: dict[str, str], calls: list[str] | None = None):
    def getaddrinfo(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        address = names.get(host, host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


def test_the_connection_goes_to_the_address_checked_and_names_the_host(settings, monkeypatch):
    settings.FETCH_ALLOWED_PRIVATE_HOSTS = ["feeds.test"]
    calls: list[str] = []
    monkeypatch.setattr(
        fetching.socket, "getaddrinfo", resolving({"feeds.test": "127.0.0.1"}, calls)
    )
    hosts: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

    with http_server(Handler) as base:
        port = base.rsplit(":", 1)[1]
        fetched = fetch(f"http://feeds.test:{port}/rss")
    assert fetched.body == b"ok"
    assert calls == ["feeds.test"]  # resolved once, checked, connected to: no second lookup
    assert hosts == [f"feeds.test:{port}"]


def test_a_redirect_loop_stops_after_the_redirects_allowed(settings):
    settings.FETCH_MAX_REDIRECTS = 3
    hits: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(301)
            self.send_header("Location", f"/hop{len(hits)}")
            self.end_headers()

    with (
        http_server(Handler) as base,
        pytest.raises(FetchError, match=r"more than 3 redirects \(FETCH_MAX_REDIRECTS\)$"),
    ):
        fetch(f"{base}/rss")
    assert hits == ["/rss", "/hop1", "/hop2", "/hop3"]


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "javascript:alert(1)", "gopher://127.0.0.1:6379/_INFO"]
)
def test_a_redirect_to_another_scheme_is_refused(location):
    with (
        http_server(redirecting_to(location)) as base,
        pytest.raises(FetchError, match=r"refused \(not http\(s\)\)$"),
    ):
        fetch(f"{base}/rss")


def test_only_http_and_https_urls_are_fetched():
    with pytest.raises(FetchError, match="only http and https URLs are fetched"):
        fetch("ftp://example.org/feed")
