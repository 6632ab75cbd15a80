"""Every probe of issue 22, replayed against this tree, in one table: probe, the behaviour the
issue reported, what happens now, the data lost, peak memory and seconds. The ingest probes are
here; the readers' and pages' probes are in hostile_web.py, the delivery and desk probes in
hostile_delivery.py, and this script runs them too. Each probe runs in a process of its own (so
its peak memory is its own) on a copy of one freshly migrated SQLite database; the servers are
on 127.0.0.1.

    .venv/bin/python bench/hostile.py            # every probe
    .venv/bin/python bench/hostile.py drip ssrf  # the probes whose names contain these words

A probe is a function returning (name, before, after, data_lost, peak_mem, seconds); add one
to PROBES for another row.
"""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
Row = tuple[str, str, str, str, str, str]
ABSTRACT = "We study a problem and find a solution that works well in practice. " * 6
WORDS = "attention is all you need again "


# --- running one probe in this process ------------------------------------------------------


def _peak_mb() -> str:
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"


def _ingest(source: str):
    from digest.ingest import ingest

    started = time.perf_counter()
    run = ingest(source)
    return run, f"{time.perf_counter() - started:.2f} s"


def _outcome(run) -> str:
    if run.status == "failed":
        return f"run failed: {run.error}"
    return f"run ok: {run.created} papers, cuts {json.dumps(run.cut_counts)}"


def _dump_with_long_line(folder: Path, line_bytes: int) -> str:
    path = folder / "dump.txt"
    piece = (WORDS * (1 << 15)).encode()
    with path.open("wb") as out:
        out.write(f"Before Paper\n{ABSTRACT}\nHuge Paper\n".encode())
        for _ in range(line_bytes // len(piece)):
            out.write(piece)
        out.write(f"\nAfter Paper\n{ABSTRACT}\n".encode())
    return str(path)


def _long_line(line_mb: int, probe: str, before: str) -> Callable[[Path], Row]:
    def probe_long_line(folder: Path) -> Row:
        from digest.models import Paper

        path = _dump_with_long_line(folder, line_mb * 1024 * 1024)
        run, seconds = _ingest(path)
        stored = len(Paper.objects.get(title="Huge Paper").abstract)
        kept = Paper.objects.filter(title__in=["Before Paper", "After Paper"]).count()
        lost = f"abstract {line_mb} MB -> {stored:,} chars; the 2 papers beside it kept: {kept}"
        return (probe, before, _outcome(run), lost, _peak_mb(), seconds)

    probe_long_line.__name__ = f"probe_{line_mb}mb_line"
    return probe_long_line


def probe_huge_json_abstract(folder: Path) -> Row:
    from digest.models import Paper

    summary = (WORDS * (5_800_000 // len(WORDS)))[:5_800_000]
    entries = [{"paper": {"id": "2401.00001", "title": "Huge", "summary": summary}}]
    path = folder / "papers.json"
    path.write_text(json.dumps(entries))
    run, seconds = _ingest(str(path))
    stored = len(Paper.objects.get().abstract)
    return (
        "3 field: 5.8 MB abstract (JSON)",
        "stored whole: +4.7 s on every page listing it",
        _outcome(run),
        f"abstract 5,800,000 -> {stored:,} chars (cut at a word)",
        _peak_mb(),
        seconds,
    )


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def probe_gzip_bomb(folder: Path) -> Row:
    declared = 3_260 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    parts = [compressor.compress(b"<?xml version='1.0'?><rss><channel>")]
    parts += [compressor.compress(block) for _ in range(declared >> 20)]
    bomb = b"".join([*parts, compressor.flush()])

    class Bomb(_Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(bomb)

    with _serving(Bomb) as port:
        run, seconds = _ingest(f"http://127.0.0.1:{port}/rss")
    return (
        f"5 gzip bomb: {len(bomb) / 1e6:.1f} MB -> {declared / 2**30:.2f} GiB",
        "MemoryError",
        _outcome(run),
        "the feed (it is refused whole)",
        _peak_mb(),
        seconds,
    )


def probe_slow_drip(folder: Path) -> Row:
    from django.conf import settings

    stop = threading.Event()

    class Drip(_Quiet):
        def do_GET(self) -> None:
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n")
            while not stop.is_set():
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)

    with _serving(Drip) as port:
        run, seconds = _ingest(f"http://127.0.0.1:{port}/rss")
        stop.set()
    return (
        f"6 slow drip: 1 byte/s (FETCH_TIMEOUT_SECONDS={settings.FETCH_TIMEOUT_SECONDS:g})",
        "never times out (the timeout was per read)",
        _outcome(run),
        "the feed (it is refused whole)",
        _peak_mb(),
        seconds,
    )


def probe_redirect_to_redis(folder: Path) -> Row:
    from django.conf import settings

    from digest.models import Paper

    settings.FETCH_ALLOWED_PRIVATE_HOSTS = ["localhost"]  # the feed's host only
    redis = socket.create_server(("127.0.0.1", 0))
    connections = []

    def fake_redis() -> None:
        while True:
            try:
                client, _ = redis.accept()
            except OSError:
                return
            connections.append(client)
            client.sendall(b"-ERR unknown command 'GET'\r\n")
            client.close()

    threading.Thread(target=fake_redis, daemon=True).start()
    redis_port = redis.getsockname()[1]

    class Redirect(_Quiet):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{redis_port}/")
            self.end_headers()

    with _serving(Redirect) as port:
        run, seconds = _ingest(f"http://localhost:{port}/rss")
    redis.close()
    return (
        "8 SSRF: feed redirects to 127.0.0.1 (Redis)",
        "followed; Redis answered; its reply published as a paper",
        _outcome(run) + f"; connections to Redis: {len(connections)}",
        f"nothing stored ({Paper.objects.count()} papers)",
        _peak_mb(),
        seconds,
    )


def probe_link_schemes(folder: Path) -> Row:
    from digest.models import Paper

    links = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/x"]
    entries = "".join(
        f"<entry><title>Paper {n}</title><summary>S.</summary>"
        f"<link rel='alternate' href='{link.replace('<', '&lt;')}'/>"
        f"<link rel='related' type='application/pdf' href='{link.replace('<', '&lt;')}'/></entry>"
        for n, link in enumerate(links)
    )
    path = folder / "feed.xml"
    path.write_text(
        f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>{entries}</feed>"
    )
    run, seconds = _ingest(str(path))
    stored = sorted({url for pair in Paper.objects.values_list("url", "pdf_url") for url in pair})
    return (
        "10 link schemes: javascript:, data:, file:",
        "rendered as href",
        _outcome(run) + f"; links stored: {stored}",
        "the 6 links (dropped); the papers kept",
        _peak_mb(),
        seconds,
    )


PROBES: list[Callable[[Path], Row]] = [
    probe_huge_json_abstract,
    _long_line(210, "3 field: 210 MB abstract (dump)", "stored whole: a 210 MB paper page"),
    _long_line(50, "4 line: one 50 MB line", "quadratic (100 MB line: 75 s)"),
    _long_line(200, "4 line: one 200 MB line", "> 300 s and 3.1 GB"),
    probe_gzip_bomb,
    probe_slow_drip,
    probe_redirect_to_redis,
    probe_link_schemes,
]


# --- the table ----------------------------------------------------------------------------------


def _run_probe(name: str) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    probe = next(probe for probe in PROBES if probe.__name__ == name)
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(probe(Path(folder))))


def main(words: list[str]) -> None:
    chosen = [probe for probe in PROBES if not words or any(w in probe.__name__ for w in words)]
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "template.sqlite3"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{template}"}
        manage = [sys.executable, "manage.py", "migrate", "-v", "0"]
        subprocess.run(manage, cwd=PROJECT_DIR, env=env, check=True)
        rows = []
        for number, probe in enumerate(chosen):
            database = Path(folder) / f"probe{number}.sqlite3"
            shutil.copy(template, database)
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{database}",
                "FETCH_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
                "FETCH_TIMEOUT_SECONDS": os.environ.get("FETCH_TIMEOUT_SECONDS", "5"),
                "PYTHONPATH": str(PROJECT_DIR),
            }
            command = [sys.executable, __file__, "--probe", probe.__name__]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode:
                rows.append(
                    (probe.__name__, "", f"probe crashed: {done.stderr[-300:]}", "", "", "")
                )
            else:
                rows.append(tuple(json.loads(done.stdout.strip().splitlines()[-1])))
    rows += _sibling_rows("hostile_web.py", words) + _sibling_rows("hostile_delivery.py", words)
    header = ("probe", "before (issue 22)", "after", "data lost", "peak RSS", "time")
    for row in [header, *rows]:
        print(" | ".join(row))


def _sibling_rows(script: str, words: list[str]) -> list[Row]:
    """The rows of a sibling probe script: JSON objects, or a " | " table under its header."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / script), *words],
        cwd=PROJECT_DIR, capture_output=True, text=True,
    )  # fmt: skip
    rows = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            cells = [item.get(key, "") for key in ("probe", "before", "after", "data_lost")]
            cells += [f"{item.get('peak_mb', '')} MB", f"{item.get('seconds', '')} s"]
        elif " | " in line and not line.startswith("probe |"):
            probe, before, after, lost, seconds, peak = (line.split(" | ") + [""] * 6)[:6]
            cells = [probe, before, after, lost, f"{peak} MB", f"{seconds} s"]
        else:
            continue
        rows.append(tuple(str(cell) for cell in cells))
    if done.returncode:
        rows.append((script, "", f"crashed: {done.stderr[-300:]}", "", "", ""))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        _run_probe(sys.argv[2])
    else:
        main(sys.argv[1:])
