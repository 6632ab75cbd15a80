"""Web bench: the home page, the digest preview and the sign-up POST under load, on gunicorn
(2 workers of 4 threads, as docker-compose.yml runs it: threads keep connections alive and overlap
database waits), PostgreSQL and Redis, with wrk as the load generator in a second process on
loopback.

    .venv/bin/python bench/web.py [--duration 15] [--home-connections 16]
                                  [--preview-connections 2] [--sign-up-connections 8]

Creates (and drops first) the database `paperboy_bench_web`, seeds 3,000 papers over 30 days,
ingests the sample dumps (samples/dumps/, the sample corpus) on top, and prints requests/s and
latency percentiles for each endpoint. The preview (GET /preview/?topics=…, what the home page's
script fetches as a reader types) cycles through the 25 judged sample queries of
bench/judged_queries.json, so each request ranks the first digest's window (the sample corpus and
the synthetic papers of the past 7 days) for another interest; the per-IP preview limit is
raised through PREVIEW_LIMIT_PER_IP for this run only. The per-IP sign-up limit would
throttle a single-IP load test, so it is raised through SIGNUP_LIMIT_PER_IP for this run only; the
per-address limit stays on (every request signs up a distinct address). Each sign-up does the
real work of the request: validation, rate-limit counters in Redis, the subscriber row (which
claims the hourly confirmation slot as it is inserted), and queueing the confirmation email on
the Redis broker (a Celery worker renders and sends it; none runs here, and the queue is emptied
afterwards).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import psycopg
import redis

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = PROJECT / ".venv" / "bin" / "python"
GUNICORN = PROJECT / ".venv" / "bin" / "gunicorn"
DATABASE = os.environ.get("BENCH_DATABASE", "paperboy_bench_web")
PG = "postgres://postgres@127.0.0.1:5432"
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/5")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
THREADS = int(os.environ.get("BENCH_THREADS", "4"))  # as docker-compose.yml runs it
STATIC_ROOT = Path(tempfile.gettempdir()) / "paperboy-bench-web-static"
SAMPLE_DUMPS = sorted(str(path) for path in (PROJECT / "samples" / "dumps").glob("*.txt"))
JUDGED_QUERIES = PROJECT / "bench" / "judged_queries.json"

SEED = """
import django
django.setup()
from datetime import timedelta
from django.utils import timezone
from digest.models import Paper
now = timezone.now()
Paper.objects.bulk_create(
    Paper(title=f"Paper {n}: scaling laws for sparse experts", title_key=f"paper-{n}",
          abstract="We study scaling. " * 20, authors=["A. Author", "B. Author", "C. Author"],
          upvotes=(n * 37) % 500, first_seen=now - timedelta(days=n % 30),
          last_seen=now - timedelta(days=n % 30), arxiv_id=f"2611.{n:05d}")
    for n in range(3000)
)
"""

PREVIEW_LUA = r"""
local queries = {QUERIES}
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", "/preview/?topics=" .. queries[(counter % #queries) + 1])
end
"""

POST_LUA = r"""
local counter = 0
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end
function init(args)
  token, cookie, run = args[1], args[2], args[3]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = "csrftoken=" .. cookie
end
function request()
  counter = counter + 1
  local body = "csrfmiddlewaretoken=" .. token
    .. "&email=bench-" .. run .. "-" .. tid .. "-" .. counter .. "%40example.org"
    .. "&topics=mixture+of+experts%0D%0Aprotein+folding%0D%0A-survey"
    .. "&frequency=daily&weekday=0&send_hour=7&time_zone=Europe%2FParis&website="
  return wrk.format(nil, nil, nil, body)
end
"""


def environment() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG}/{DATABASE}",
        "CACHE_URL": CACHE_URL,
        "CELERY_BROKER_URL": BROKER_URL,  # confirmation emails are queued; no worker runs here
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-long",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SIGNUP_LIMIT_PER_IP": "1000000000",  # one IP sends every request: see the docstring
        "PREVIEW_LIMIT_PER_IP": "1000000000",
        "STATIC_ROOT": str(STATIC_ROOT),  # the manifest DEBUG=0 pages need
        "LOG_LEVEL": "ERROR",
    }


def prepare_database(env: dict[str, str]) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=PROJECT, env=env, check=True)
    subprocess.run([PYTHON, "-c", SEED], cwd=PROJECT, env=env, check=True)
    subprocess.run(
        [PYTHON, "manage.py", "ingest", *SAMPLE_DUMPS, "--json"],
        cwd=PROJECT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT, env=env, check=True,
    )  # fmt: skip
    redis.Redis.from_url(CACHE_URL).flushdb()
    redis.Redis.from_url(BROKER_URL).flushdb()


def start_gunicorn(env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen(
        [GUNICORN, "config.wsgi", "--workers", "2", "--threads", str(THREADS),
         "--bind", f"127.0.0.1:{PORT}", "--log-level", "warning"],
        cwd=PROJECT, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{BASE}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def worker_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU time of gunicorn's workers so far (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def csrf_pair() -> tuple[str, str]:
    """The form token and cookie a browser would get from the home page."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    html = opener.open(f"{BASE}/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    cookie = next(c.value for c in jar if c.name == "csrftoken")
    return token, cookie


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, duration: int, connections: int, script: Path | None = None,
        args: tuple[str, ...] = ()) -> dict:  # fmt: skip
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    command += [url]
    if args:
        command += ["--", *args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = {
        int(p): float(v) * UNITS[u]
        for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": percentiles[50],
        "p99": percentiles[99],
        "requests": requests,
        "bad": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


def count_subscribers() -> int:
    with psycopg.connect(f"{PG}/{DATABASE}") as connection:
        return connection.execute("SELECT count(*) FROM subscriptions_subscriber").fetchone()[0]


def count_queued_emails() -> int:
    return redis.Redis.from_url(BROKER_URL).llen("celery")


def preview_queries() -> list[str]:
    """The judged sample queries, URL-encoded as the preview's script sends them."""
    queries = [item["query"] for item in json.loads(JUDGED_QUERIES.read_text())]
    return [urllib.parse.quote("\n".join(q.strip() for q in query.split(";"))) for query in queries]


def report(name: str, result: dict, *, target_rps: int, target_p99: float = 100) -> None:
    ok = result["rps"] >= target_rps and result["p99"] < target_p99 and not result["bad"]
    print(
        f"{name}: {result['rps']:.0f} req/s, p50 {result['p50']:.1f} ms, "
        f"p99 {result['p99']:.1f} ms over {result['requests']} requests "
        f"({result['bad']} non-2xx/3xx, socket errors: {result['socket_errors']}) "
        f"[target >= {target_rps} req/s, p99 < {target_p99:.0f} ms: "
        f"{'met' if ok else 'NOT met'}]"
    )
    print(
        f"  app CPU {result['cpu_ms']:.2f} ms per request in the workers: two otherwise idle cores "
        f"could serve at most ~{2000 / result['cpu_ms']:.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--home-connections", type=int, default=16)
    parser.add_argument("--preview-connections", type=int, default=2)
    parser.add_argument("--sign-up-connections", type=int, default=8)
    options = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    load_before = os.getloadavg()[0]
    env = environment()
    prepare_database(env)
    server = start_gunicorn(env)
    try:
        urllib.request.urlopen(f"{BASE}/").read()  # warm both caches once
        cpu = worker_cpu_seconds(server)
        home = wrk(f"{BASE}/", duration=options.duration, connections=options.home_connections)
        home["cpu_ms"] = (worker_cpu_seconds(server) - cpu) * 1000 / home["requests"]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            quoted = ", ".join(f'"{query}"' for query in preview_queries())
            script.write(PREVIEW_LUA.replace("{QUERIES}", "{" + quoted + "}"))
        for _ in range(10):  # each worker indexes the window once, at its first preview
            urllib.request.urlopen(f"{BASE}/preview/?topics=warm").read()
        cpu = worker_cpu_seconds(server)
        preview = wrk(f"{BASE}/", duration=options.duration,
                      connections=options.preview_connections,
                      script=Path(script.name))  # fmt: skip
        preview["cpu_ms"] = (worker_cpu_seconds(server) - cpu) * 1000 / preview["requests"]
        token, cookie = csrf_pair()
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(POST_LUA)
        redis.Redis.from_url(BROKER_URL).flushdb()  # count only this run's queued emails
        before, cpu = count_subscribers(), worker_cpu_seconds(server)
        sign_up = wrk(f"{BASE}/subscribe/", duration=options.duration,
                      connections=options.sign_up_connections, script=Path(script.name),
                      args=(token, cookie, str(int(time.time()))))  # fmt: skip
        sign_up["cpu_ms"] = (worker_cpu_seconds(server) - cpu) * 1000 / sign_up["requests"]
        created, emails = count_subscribers() - before, count_queued_emails()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"gunicorn 2 workers x {THREADS} thread(s), PostgreSQL, Redis cache; "
        f"wrk -t2 -d{options.duration}s on loopback ({options.home_connections} connections for "
        f"GET /, {options.preview_connections} for GET /preview/, "
        f"{options.sign_up_connections} for the sign-up POST); "
        f"{os.cpu_count()} CPUs shared with wrk, PostgreSQL, Redis and other work; "
        f"1-min load average before the run: {load_before:.1f}"
    )
    report("GET /", home, target_rps=1000)
    # The preview's target is its latency as readers type (each script waits for a pause).
    report("GET /preview/ (25 judged queries in turn)", preview, target_rps=0, target_p99=150)
    report("POST /subscribe/", sign_up, target_rps=300)
    print(f"sign-ups: {created} subscribers created, {emails} confirmation emails queued")
    redis.Redis.from_url(BROKER_URL).flushdb()


if __name__ == "__main__":
    sys.exit(main())
