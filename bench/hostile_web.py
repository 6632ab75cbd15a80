"""Hostile readers and pages (issue 22): replays each probe against this tree and prints one row
per probe: what the issue reported, what happens now, the data lost, seconds and peak memory.
Each probe runs in a process of its own (its peak memory is its own) on a copy of one freshly
migrated SQLite database. The queue probe needs Redis (BENCH_BROKER_URL, default
redis://127.0.0.1:6379/10, and the next database for the cache) and starts a Celery worker.

    .venv/bin/python bench/hostile_web.py              # every probe
    .venv/bin/python bench/hostile_web.py flood links  # the probes whose names hold these words

A probe is a function returning {"probe", "before", "after", "data_lost", "seconds",
"peak_mb"}; add one to PROBES for another row.
"""

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/11")
FLOOD = 3782  # the rating POSTs of the script


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _row(probe: str, before: str, after: str, data_lost: str, started: float) -> dict:
    seconds = round(time.perf_counter() - started, 2)
    return {"probe": probe, "before": before, "after": after, "data_lost": data_lost,
            "seconds": seconds, "peak_mb": _peak_mb()}  # fmt: skip


def _paper(title: str, **fields):
    from django.utils import timezone

    from digest.ingest.records import title_key
    from digest.models import Paper

    now = timezone.now()
    fields.setdefault("abstract", "We route tokens to experts and balance their load.")
    return Paper.objects.create(
        title=title, title_key=title_key(title)[:300], upvotes=fields.pop("upvotes", 10),
        first_seen=now - timedelta(hours=1), last_seen=now, **fields,
    )  # fmt: skip


def _reader(email: str = "reader@example.com", **fields):
    from subscriptions.models import Subscriber

    fields.setdefault("status", Subscriber.Status.ACTIVE)
    return Subscriber.objects.create(email=email, topics="mixture of experts", **fields)


# --- the probes -----------------------------------------------------------------------------


def probe_rating_flood() -> dict:
    """One reader's rating links POSTed FLOOD times (a script), then the queued relearn runs."""
    from django.conf import settings
    from django.test import Client

    from digest import tasks
    from digest.feedback import ratings
    from digest.models import Rating, ReaderProfile

    reader = _reader()
    papers = [_paper(f"Sparse experts, part {n}") for n in range(FLOOD)]
    queued: list[int] = []
    tasks.learn_reader_profile.delay = queued.append  # count what reaches the broker
    client, statuses = Client(), {}
    started = time.perf_counter()
    for paper in papers:
        token = ratings.rating_token(reader, paper.pk)
        status = client.post(ratings.rate_path(paper.pk, "more", token)).status_code
        statuses[status] = statuses.get(status, 0) + 1
    for subscriber_id in queued:
        tasks.learn_reader_profile(subscriber_id)
    stored = Rating.objects.count()
    learned = ReaderProfile.objects.get(subscriber=reader).ratings_count
    return _row(
        "rating flood (one reader)",
        f"{FLOOD:,} POSTs: {FLOOD:,} relearn tasks queued, no limit",
        f"{FLOOD:,} POSTs: {statuses} (limit {settings.RATING_LIMIT_PER_READER}/h per reader); "
        f"relearn tasks queued: {len(queued)}",
        f"none: {stored} ratings accepted, {learned} learned by the one relearn",
        started,
    )


def probe_consent_behind_relearns() -> dict:
    """FLOOD relearns queued, then a confirmation: when does a real worker send it? Measured
    with the confirmation on the relearns' queue (the routing before) and on its own."""
    import redis

    from config.celery import app as celery_app
    from digest import tasks
    from digest.models import Rating
    from subscriptions import tasks as consent_tasks
    from subscriptions.models import Subscriber

    started = time.perf_counter()
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return _row("confirmation behind relearns", "21 s late", f"skipped: {error}", "-", started)
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = BROKER_URL, False
    reader = _reader()
    Rating.objects.create(subscriber=reader, paper=_paper("Sparse experts"), value=1)
    outcomes = []
    for label, queue in (("on the relearns' queue", "celery"), ("on its own queue", None)):
        redis.Redis.from_url(BROKER_URL).flushdb()
        for _ in range(FLOOD):
            tasks.learn_reader_profile.apply_async((reader.pk,), queue=queue or "feedback")
        newcomer = _reader(f"new{len(outcomes)}@example.org", status=Subscriber.Status.PENDING)
        queue_options = {"queue": queue} if queue else {}
        outbox = Path(os.environ["EMAIL_FILE_PATH"]) / label.replace(" ", "-")
        with _worker(outbox, queues="celery,consent,feedback") as ready_at:
            consent_tasks.send_consent_email.apply_async((newcomer.pk, "confirm"), **queue_options)
            while not list(outbox.glob("*.eml")):
                time.sleep(0.05)
            late = time.monotonic() - ready_at
            left = redis.Redis.from_url(BROKER_URL).llen(queue or "feedback")
        outcomes.append(f"{label}: sent {late:.1f} s after the worker started, {left} left")
    redis.Redis.from_url(BROKER_URL).flushdb()
    return _row(
        "confirmation behind relearns",
        f"{outcomes[0]} (issue: 21 s late behind 3,782 tasks)",
        outcomes[1],
        "none",
        started,
    )


class _worker:
    """A `celery worker` on this probe's database and BROKER_URL; yields when it is ready."""

    def __init__(self, outbox: Path, queues: str) -> None:
        self.outbox, self.queues = outbox, queues

    def __enter__(self) -> float:
        env = {**os.environ, "CELERY_BROKER_URL": BROKER_URL, "CACHE_URL": CACHE_URL,
               "EMAIL_FILE_PATH": str(self.outbox)}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1",
             "-Q", self.queues, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for line in self.process.stdout:
            if " ready." in line:
                # Keep reading its log, or the worker blocks once the pipe is full.
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return time.monotonic()
        raise RuntimeError("the celery worker did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def probe_placeholder_title_home() -> dict:
    """A trending paper titled with what the home page used to substitute for its token and
    nonce: is the title shown as written, and does sign-up still work?"""
    from django.test import Client

    from digest.web.home import forget_home_page
    from subscriptions.models import Subscriber

    started = time.perf_counter()
    title = "csrf-token-placeholder-7f3a9c csp-nonce-placeholder-2b8e41 Attention"
    _paper(title, upvotes=99)
    forget_home_page()
    client = Client(enforce_csrf_checks=True)
    page = client.get("/")
    html = page.content.decode()
    nonce = re.search(r"'nonce-([^']+)'", page["Content-Security-Policy"]).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    data = {"email": "ada@example.org", "topics": "experts", "frequency": "daily",
            "weekday": "0", "send_hour": "7", "time_zone": "UTC", "website": "",
            "csrfmiddlewaretoken": token}  # fmt: skip
    signed_up = client.post("/subscribe/", data).status_code
    stray_nonces = html.count(nonce) - html.count(f'nonce="{nonce}"')
    return _row(
        "placeholder text in a title (home page)",
        "title printed the CSRF token and nonce; sign-up refused (CSRF)",
        f"title shown as written: {title in html}; nonce outside nonce=: {stray_nonces}; "
        f"sign-up POST: {signed_up}",
        f"none: subscribers stored {Subscriber.objects.count()} of 1",
        started,
    )


def probe_placeholder_title_digest() -> dict:
    """A paper titled with the old reader-token placeholder, in two readers' digests."""
    from datetime import date

    from digest.delivery.composing import compose_digest
    from digest.feedback import ratings
    from digest.matching import Match

    started = time.perf_counter()
    title = "reader-token-placeholder-5c1e7d Attention"
    paper = _paper(title)
    match = Match(paper_id=paper.pk, score=1.0, pinned=False, topic="experts",
                  matched_terms=("experts",), why="Matches 'experts'")  # fmt: skip
    findings = []
    for email in ("ada@example.com", "grace@example.com"):
        reader = _reader(email)
        message = compose_digest(reader, [match], period=date(2026, 3, 2))
        token = ratings.rating_token(reader, paper.pk)
        text = message.body
        findings.append((title in text, text.count(token)))
    return _row(
        "placeholder text in a title (digest)",
        "the reader's rating token printed inside the title",
        f"title as written, token count (3 links) per reader: {findings}",
        "none",
        started,
    )


def probe_tokens() -> dict:
    """A new token holds no sha256 of the address; links in emails sent before still work."""
    from django.core import signing
    from django.test import Client

    from digest.feedback import ratings
    from digest.models import Rating
    from subscriptions import links

    started = time.perf_counter()
    reader, paper = _reader("Ada.Lovelace@example.com"), _paper("Sparse experts")
    digest = hashlib.sha256(reader.email.lower().encode()).hexdigest()
    new = ratings.rating_token(reader, paper.pk) + links.make_token(reader, "preferences")
    enumerable = any(digest[i : i + 8] in new for i in range(len(digest) - 7))
    signer = signing.Signer(salt=ratings.SALT)
    old = signer.sign_object([reader.pk, paper.pk, digest[:12]], compress=True)
    old_post = Client().post(ratings.rate_path(paper.pk, "more", old)).status_code
    return _row(
        "rating and preference tokens",
        "reader id + unsalted sha256 of the address (enumerable)",
        f"sha256 of the address in new tokens: {enumerable}; old-format rating POST: {old_post}",
        f"none: old link's rating stored {Rating.objects.count()} of 1",
        started,
    )


def probe_hidden_paper() -> dict:
    from django.test import Client
    from django.urls import reverse

    from digest.feedback import ratings
    from digest.models import Paper
    from subscriptions import links

    started = time.perf_counter()
    reader, paper = _reader(), _paper("Hidden later by the editors")
    ratings.rate(reader, paper, 1)
    Paper.objects.filter(pk=paper.pk).update(hidden=True)
    token = links.make_token(reader, "preferences")
    html = Client().get(reverse("subscriptions:preferences", kwargs={"token": token}))
    listed = f"/papers/{paper.pk}/" in html.content.decode()
    return _row(
        "hidden paper in 'Papers you rated'",
        "listed, linking to a 404",
        f"listed: {listed}",
        "none: the rating is kept",
        started,
    )


def probe_hostile_links() -> dict:
    from django.test import Client

    started = time.perf_counter()
    links = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
             "file:///etc/passwd", "java\tscript:alert(1)"]  # fmt: skip
    rendered = 0
    for n, link in enumerate(links):
        paper = _paper(f"Hostile link {n}", url=link, pdf_url=link)
        html = Client().get(f"/papers/{paper.pk}/").content.decode()
        rendered += sum(1 for href in re.findall(r'href="([^"]*)"', html) if ":" in href
                        and not href.lower().startswith(("http://", "https://")))  # fmt: skip
    return _row(
        "javascript:/data:/file: links stored in the DB",
        "rendered as href on the paper page",
        f"non-http(s) hrefs on {len(links)} paper pages: {rendered}",
        "none",
        started,
    )


PROBES = [
    probe_rating_flood,
    probe_consent_behind_relearns,
    probe_placeholder_title_home,
    probe_placeholder_title_digest,
    probe_tokens,
    probe_hidden_paper,
    probe_hostile_links,
]


# --- running them ---------------------------------------------------------------------------


def _run_probe(name: str) -> None:
    """In the probe's own process: set Django up on its database copy and print its row."""
    import django

    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    row = next(probe for probe in PROBES if probe.__name__ == name)()
    print(json.dumps(row))


def main() -> None:
    wanted = sys.argv[1:]
    folder = Path(tempfile.mkdtemp(prefix="paperboy-hostile-web-"))
    template = folder / "template.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CACHE_URL")}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=PROJECT_DIR, env={**env, "DATABASE_URL": f"sqlite:///{template}"}, check=True,
    )  # fmt: skip
    try:
        for probe in PROBES:
            if wanted and not any(word in probe.__name__ for word in wanted):
                continue
            database = folder / f"{probe.__name__}.sqlite3"
            shutil.copy(template, database)
            probe_env = {**env, "DATABASE_URL": f"sqlite:///{database}",
                         "EMAIL_FILE_PATH": str(folder / probe.__name__),
                         "PAPERBOY_VAR_DIR": str(folder)}  # fmt: skip
            done = subprocess.run(
                [sys.executable, __file__, "--probe", probe.__name__],
                cwd=PROJECT_DIR, env=probe_env, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode:
                print(f"{probe.__name__} failed:\n{done.stderr[-3000:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row, ensure_ascii=False))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        _run_probe(sys.argv[2])
    else:
        main()
