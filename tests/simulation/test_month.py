"""A month in the life of Paperboy, through the real entry points.

30 days from 2026-03-20 (Israel springs forward on the 27th, Europe on the 29th; Australia, New
Zealand and Chile fall back on 5 April). Every day a listing is ingested (the `ingest` command on
even days, the `ingest_sources` task on odd ones; once the same file twice), beat's
`plan_and_send` ticks every simulated hour, readers pause, resume, change topics and move time
zone on their preference page, unsubscribe in one click, bounce through the ESP's webhook, sign
up (and come back) through the form and the confirmation link, and an editor hides, pins and
merges papers in the admin, and a reader rates papers from a digest's links and pastes "Papers
like these" on their preference page (a paper rated is never sent to them after). Readers sit
in 19 time zones (30- and 45-minute offsets, DST steps both ways, a 30-minute DST step on Lord
Howe), daily and weekly.

The clock is Django's `timezone.now`, which every module reads; the planner is given the same
moment. After each day the test checks, against its own account of who is due when, the rows
and the emails: one digest or skip per active reader and period, no paper twice to a reader,
nothing to a reader after they stopped, every run finished, nothing logged at ERROR.

One test, two ways: in-process with eager Celery on the embedded defaults, and, when a broker is
configured (CI's services pass, on PostgreSQL), with a real Celery worker sending every digest
(the planner runs in-process, as beat's task would, so the clock holds for planning; the
worker's clock is real, and sending never compares it with the plan).
"""

import base64
import json
import logging
import re
import time as monotonic_time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from digest import tasks
from digest.matching import search_papers_for
from digest.models import (
    DeliveredPaper,
    Delivery,
    DigestRun,
    IngestRun,
    Paper,
    Rating,
    ReaderProfile,
)
from subscriptions.models import Subscriber
from tests.simulation.listings import Listings

START = datetime(2026, 3, 20, tzinfo=UTC)
DAYS = 30
TICK = timedelta(hours=1)
INGEST_AT = timedelta(minutes=5)  # each day's listing arrives at 00:05 UTC
EDIT_AT = timedelta(minutes=7)  # and the editor looks at it at 00:07
BEAT_AFTER_LAST_TICK = timedelta(minutes=5)
WEBHOOK_SECRET = "month-hooks:s3cret"
BACKEND = "tests.simulation.outbox.EveryHandoverOutbox"

# (zone, local send hour): 30- and 45-minute offsets, send hours inside the hour Europe skips
# on 29 March and inside the hour Australia and New Zealand repeat on 5 April.
SCHEDULES = [
    ("UTC", 7),
    ("Europe/London", 1),  # 01:00-02:00 does not exist on 29 March
    ("Europe/Berlin", 2),  # 02:00-03:00 does not exist on 29 March
    ("Europe/Berlin", 8),
    ("America/New_York", 7),
    ("America/Los_Angeles", 23),
    ("Asia/Kolkata", 8),  # +05:30
    ("Asia/Kolkata", 0),
    ("Asia/Kathmandu", 6),  # +05:45
    ("Australia/Adelaide", 2),  # +10:30, then +09:30: 02:00-03:00 twice on 5 April
    ("Australia/Adelaide", 9),
    ("America/St_Johns", 7),  # -02:30
    ("Australia/Eucla", 7),  # +08:45
    ("Pacific/Auckland", 2),  # 02:00-03:00 twice on 5 April
    ("Pacific/Chatham", 3),  # +13:45, then +12:45
    ("Australia/Lord_Howe", 1),  # +11, then +10:30: 01:30-02:00 twice
    ("Asia/Tokyo", 12),
    ("Pacific/Kiritimati", 0),  # +14
    ("Pacific/Pago_Pago", 23),  # -11
    ("Asia/Tehran", 18),  # +03:30
    ("America/Santiago", 23),  # falls back on 5 April
    ("Asia/Jerusalem", 2),  # springs forward on 27 March, 02:00 does not exist
]
TOPICS = [
    "mixture of experts\nMoE",
    "reinforcement learning\n-survey",
    "language models\nreasoning",
    "code generation",
    "attention\ntransformers",
    "graph neural networks",
    "federated learning",
    "scheduling\nonline algorithms",
    "delayed feedback\nbandits",
    "quantization\nmodel compression",
    "spiking neural networks",
    "diffusion models",
    "continual learning",
    "compilers\nprogram synthesis",
    "benchmark",
    "optimization\ngradient descent",
    "large language models\n-survey\n-benchmark",
]
BROAD = "large language models\nreinforcement learning\ncode generation"
ALL_EXCLUSIONS = "-survey\n-benchmark"
MATCHES_NOTHING = "medieval numismatics\nbyzantine coinage"
READER_COUNT = 66


@dataclass(frozen=True)
class Reader:
    email: str
    topics: str
    zone: str
    send_hour: int
    frequency: str = "daily"
    weekday: int = 0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


def cast() -> list[Reader]:
    readers = []
    for number in range(READER_COUNT):
        zone, hour = SCHEDULES[number % len(SCHEDULES)]
        weekly = number % 4 == 3
        readers.append(
            Reader(
                email=f"r{number:02d}.{zone.split('/')[-1].lower()}@example.org",
                topics=TOPICS[number % len(TOPICS)],
                zone=zone,
                send_hour=hour,
                frequency="weekly" if weekly else "daily",
                weekday=(number * 3) % 7,
            )
        )
    special = {0: ALL_EXCLUSIONS, 1: MATCHES_NOTHING}
    special.update({number: BROAD for number in ACTORS.values()})
    return [
        Reader(**{**reader.__dict__, "topics": special.get(number, reader.topics)})
        for number, reader in enumerate(readers)
    ]


# Who does what (reader numbers; 7, 11, 15, ... are weekly).
ACTORS = {
    "pauses and resumes": 4,
    "unsubscribes early": 6,
    "pauses for good": 9,
    "bounces": 10,
    "bounces softly once": 12,
    "changes topics": 13,
    "unsubscribes late": 16,
    "weekly, pauses": 19,
    "moves across the date line": 17,
    "moves and goes weekly": 20,
    "rates papers": 14,
}
# New schedules on the preference page: (zone, send hour, frequency, weekday).
MOVES = {
    "moves across the date line": ("Pacific/Pago_Pago", 0, "daily", 0),  # from Kiritimati, -25 h
    "moves and goes weekly": ("Asia/Kathmandu", 6, "weekly", 2),  # from Santiago, daily
}
NEWCOMER = Reader("newcomer@example.org", BROAD, "Asia/Kolkata", 9)
NEW_TOPICS = "diffusion models\ncontinual learning\n-survey"


@dataclass(frozen=True)
class Step:
    day: int
    at: timedelta
    action: str
    actor: str = ""


PLAN = [
    Step(3, timedelta(hours=10, minutes=10), "pause", "pauses and resumes"),
    Step(5, EDIT_AT, "hide a fresh paper"),
    Step(6, timedelta(hours=14, minutes=10), "one-click unsubscribe", "unsubscribes early"),
    Step(7, timedelta(hours=5, minutes=10), "pause", "pauses for good"),
    Step(9, timedelta(hours=11, minutes=10), "hard bounce", "bounces"),
    Step(10, timedelta(hours=16, minutes=10), "resume", "pauses and resumes"),
    Step(11, EDIT_AT, "merge the duplicate"),
    Step(12, timedelta(hours=8, minutes=10), "change topics", "changes topics"),
    Step(13, timedelta(hours=20, minutes=10), "soft bounce", "bounces softly once"),
    Step(14, EDIT_AT, "hide a sent paper"),
    Step(16, timedelta(hours=12, minutes=10), "change schedule", "moves across the date line"),
    Step(18, timedelta(hours=18, minutes=10), "change schedule", "moves and goes weekly"),
    Step(24, timedelta(minutes=20), "ingest the listing again"),
    Step(8, timedelta(hours=10, minutes=10), "sign up a newcomer"),
    Step(19, EDIT_AT, "pin a sent paper"),
    Step(21, timedelta(hours=10, minutes=10), "sign up again", "unsubscribes early"),
    Step(20, timedelta(hours=3, minutes=10), "one-click unsubscribe", "unsubscribes late"),
    Step(22, timedelta(hours=9, minutes=10), "pause", "weekly, pauses"),
    Step(8, timedelta(hours=12, minutes=10), "rate from the email", "rates papers"),
    Step(15, EDIT_AT, "paste papers like these", "rates papers"),
]
HIDE_FRESH_DAY, MERGE_DAY, RELIST_HIDDEN_DAY = 5, 11, 7


class Clock:
    """Stands in for django.utils.timezone.now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Email:
    message_id: str
    to: str
    text: str
    headers: EmailMessage

    @property
    def paper_ids(self) -> list[int]:
        """The papers listed, by the link to each one's page."""
        return [int(pk) for pk in re.findall(r"/papers/(\d+)/for/", self.text)]


@dataclass
class Account:
    """The test's own account of the month: who should be due when, and what was emailed."""

    readers: dict[str, Reader]
    active: dict[str, list[tuple[datetime, bool]]] = field(default_factory=dict)
    expected: set[tuple[str, date]] = field(default_factory=set)
    ticks: int = 0
    emails: dict[str, Email] = field(default_factory=dict)  # by outbox file name
    hidden: dict[int, datetime] = field(default_factory=dict)  # paper -> when
    hidden_arxiv_ids: list[str] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)  # merged-away paper -> kept paper
    topics_changed_at: datetime | None = None
    rated: dict[str, dict[int, datetime]] = field(default_factory=dict)  # reader -> paper -> when

    def __post_init__(self) -> None:
        self.active = {email: [(START, True)] for email in self.readers}

    def set_active(self, email: str, at: datetime, active: bool) -> None:
        self.active[email].append((at, active))

    def is_active(self, email: str, at: datetime) -> bool:
        return [state for when, state in self.active[email] if when <= at][-1]

    def tick(self, now: datetime) -> None:
        """A beat tick at `now`: every active reader whose local send time has come on a
        scheduled local date is due that date."""
        self.ticks += 1
        for reader in self.readers.values():
            if not self.is_active(reader.email, now):
                continue
            local_date = now.astimezone(reader.tz).date()
            if reader.frequency == "weekly" and local_date.weekday() != reader.weekday:
                continue
            # A send time that does not exist (spring forward) resolves to the instant of the
            # jump; one that happens twice (fall back) to its first occurrence.
            send_at = datetime.combine(local_date, time(reader.send_hour), tzinfo=reader.tz)
            if now >= send_at:
                self.expected.add((reader.email, local_date))


class Month:
    """Drives the month; `drain` waits until the sending tasks queued so far have run."""

    def __init__(self, *, outbox: Path, tmp_path: Path, clock: Clock, settings, drain) -> None:
        self.outbox = outbox
        self.tmp_path = tmp_path
        self.clock = clock
        self.settings = settings
        self.drain = drain
        self.readers = {reader.email: reader for reader in cast()}
        self.by_number = list(self.readers)
        self.account = Account(self.readers)
        self.listings = Listings()
        self.web = Client()
        self.esp = Client(
            HTTP_AUTHORIZATION=f"Basic {base64.b64encode(WEBHOOK_SECRET.encode()).decode()}"
        )
        self.admin = Client()
        self.editor = get_user_model().objects.create_superuser("editor", "ed@example.org", "pw")
        self.per_reader_papers: dict[str, list[int]] = defaultdict(list)  # papers emailed
        self.consent_emails: dict[str, Email] = {}  # by outbox file name

    def actor(self, role: str) -> str:
        return self.by_number[ACTORS[role]]

    # --- the entry points ---------------------------------------------------------------------

    def import_readers(self) -> None:
        path = self.tmp_path / "readers.csv"
        rows = ["email,topics,frequency,send_hour,timezone"]
        for reader in self.readers.values():
            topics = ";".join(reader.topics.splitlines())
            rows.append(
                f"{reader.email},{topics},{reader.frequency},{reader.send_hour},{reader.zone}"
            )
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        out = StringIO()
        call_command("import_subscribers", str(path), stdout=out, stderr=out)
        assert f"Imported {len(self.readers)} new" in out.getvalue(), out.getvalue()
        for reader in self.readers.values():  # the CSV has no weekday column
            if reader.frequency == "weekly":
                Subscriber.objects.filter(email=reader.email).update(weekday=reader.weekday)

    def ingest(self, day: int) -> None:
        today = (START + timedelta(days=day)).date()
        relist, duplicate_of = (), ""
        if day == RELIST_HIDDEN_DAY:
            relist = tuple(self.account.hidden_arxiv_ids)
        if day == MERGE_DAY:
            self.drain()  # the same choice with a worker as without
            duplicate_of = self.most_delivered(self.listings.by_day[-1])
        entries = self.listings.day(day, today, relist=relist, duplicate_of=duplicate_of)
        self.duplicate = (duplicate_of, self.listings.by_day[-1][-1]) if duplicate_of else None
        path = self.listings.write(entries, self.tmp_path / f"listing-{today}.json")
        if day % 2 == 0:
            call_command("ingest", str(path), stdout=StringIO())
        else:
            self.settings.DIGEST_SOURCES = [str(path)]
            runs = tasks.ingest_sources()
            assert runs is not None, "the ingest lock was held"

    def tick(self, now: datetime) -> None:
        self.clock.now = now
        self.account.tick(now)
        tasks.plan_and_send(now=now.isoformat())

    def act(self, step: Step, now: datetime) -> None:
        self.drain()  # the reader acts on the emails they have
        self.clock.now = now
        who = self.actor(step.actor) if step.actor else ""
        action = getattr(self, "do_" + step.action.replace(" ", "_").replace("-", "_"))
        action(who, now) if who else action(now)

    def do_pause(self, who: str, now: datetime) -> None:
        page = self.preferences_path(who)
        assert self.web.get(page).status_code == 200
        response = self.web.post(page, {"action": "pause"})
        assert response.status_code == 200 and b"Paused" in response.content
        assert self.status_of(who) == Subscriber.Status.PAUSED
        self.account.set_active(who, now, False)

    def do_resume(self, who: str, now: datetime) -> None:
        response = self.web.post(self.preferences_path(who), {"action": "resume"})
        assert response.status_code == 200 and b"Resumed" in response.content
        self.account.set_active(who, now, True)

    def do_change_topics(self, who: str, now: datetime) -> None:
        subscriber = Subscriber.objects.get(email=who)
        response = self.web.post(
            self.preferences_path(who),
            {
                "topics": NEW_TOPICS,
                "frequency": subscriber.frequency,
                "weekday": subscriber.weekday,
                "send_hour": subscriber.send_hour,
                "time_zone": subscriber.time_zone,
                "papers_per_digest": subscriber.papers_per_digest,
            },
        )
        assert response.status_code == 200 and b"Saved" in response.content
        self.account.topics_changed_at = now

    def do_change_schedule(self, who: str, now: datetime) -> None:
        zone, hour, frequency, weekday = MOVES[self.role_of(who)]
        subscriber = Subscriber.objects.get(email=who)
        response = self.web.post(
            self.preferences_path(who),
            {
                "topics": subscriber.topics,
                "frequency": frequency,
                "weekday": weekday,
                "send_hour": hour,
                "time_zone": zone,
                "papers_per_digest": subscriber.papers_per_digest,
            },
        )
        assert response.status_code == 200 and b"Saved" in response.content
        moved = Reader(who, subscriber.topics, zone, hour, frequency, weekday)
        self.readers[who] = moved  # the account's due dates follow from the next tick on

    def role_of(self, who: str) -> str:
        return next(role for role, number in ACTORS.items() if self.by_number[number] == who)

    def do_ingest_the_listing_again(self, now: datetime) -> None:
        """A cron job run twice: the same file changes nothing."""
        path = self.tmp_path / f"listing-{now.date()}.json"
        call_command("ingest", str(path), stdout=StringIO())
        run = IngestRun.objects.filter(source=str(path)).order_by("-pk").first()
        assert (run.created, run.updated, run.unchanged) == (0, 0, run.records)

    def do_sign_up_a_newcomer(self, now: datetime) -> None:
        self.sign_up(NEWCOMER, now)

    def do_sign_up_again(self, who: str, now: datetime) -> None:
        self.sign_up(self.readers[who], now)

    def sign_up(self, reader: Reader, now: datetime) -> None:
        """The form on the site, then the button behind the link in the confirmation email."""
        response = self.web.post(
            "/subscribe/",
            {
                "email": reader.email,
                "topics": reader.topics,
                "frequency": reader.frequency,
                "weekday": reader.weekday,
                "send_hour": reader.send_hour,
                "time_zone": reader.zone,
                "website": "",
            },
        )
        assert response.status_code == 302, response.content[:2000]
        confirm = urlsplit(self.confirmation_link(reader.email)).path
        assert self.web.get(confirm).status_code == 200
        assert self.web.post(confirm).status_code == 200
        assert Subscriber.objects.get(email=reader.email).status == Subscriber.Status.ACTIVE
        self.readers[reader.email] = reader
        self.account.active.setdefault(reader.email, [(START, False)]).append((now, True))

    def confirmation_link(self, address: str, timeout: float = 30) -> str:
        """The link in the newest confirmation email to `address` (a worker may still be
        sending it)."""
        deadline = monotonic_time.monotonic() + timeout
        seen = {name for name, email in self.consent_emails.items() if email.to == address}
        while True:
            self.read_outbox()
            new = [e for n, e in self.consent_emails.items() if e.to == address and n not in seen]
            if new:
                return re.search(r"https?://\S+/confirm/[^/\s]+/", new[-1].text)[0]
            assert monotonic_time.monotonic() < deadline, f"no confirmation email to {address}"
            monotonic_time.sleep(0.05)

    def do_pin_a_sent_paper(self, now: datetime) -> None:
        recent = [arxiv_id for ids in self.listings.by_day[-3:-1] for arxiv_id in ids]
        paper = Paper.objects.get(arxiv_id=self.most_delivered(recent))
        self.admin.force_login(self.editor)
        response = self.admin.post(
            "/admin/digest/paper/", {"action": "pin", "_selected_action": [paper.pk]}
        )
        assert response.status_code == 302
        paper.refresh_from_db()
        assert paper.pinned

    def do_one_click_unsubscribe(self, who: str, now: datetime) -> None:
        header = self.last_email(who).headers["List-Unsubscribe"]
        url = re.search(r"<(https?://[^>]+/one-click/)>", header)[1]
        response = self.web.post(urlsplit(url).path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert self.status_of(who) == Subscriber.Status.UNSUBSCRIBED
        self.account.set_active(who, now, False)

    def do_hard_bounce(self, who: str, now: datetime) -> None:
        assert self.bounce(who, "HardBounce").status_code == 200
        assert self.status_of(who) == Subscriber.Status.BOUNCED
        self.account.set_active(who, now, False)

    def do_soft_bounce(self, who: str, now: datetime) -> None:
        assert self.bounce(who, "SoftBounce").status_code == 200
        assert self.status_of(who) == Subscriber.Status.ACTIVE  # one soft bounce of three

    def status_of(self, who: str) -> str:
        return Subscriber.objects.get(email=who).status

    def bounce(self, who: str, kind: str):
        payload = {
            "RecordType": "Bounce",
            "MessageStream": "outbound",
            "ID": 4323372036854775807,
            "Type": kind,
            "TypeCode": 1 if kind == "HardBounce" else 4096,
            "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
            "Tag": "digest",
            "MessageID": self.last_email(who).message_id,
            "Metadata": {},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message.",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": who,
            "From": "digest@example.com",
            "BouncedAt": self.clock.now.isoformat(),
            "DumpAvailable": False,
            "Inactive": kind == "HardBounce",
            "CanActivate": True,
            "Subject": "Your papers",
        }
        return self.esp.post(
            "/anymail/postmark/tracking/", json.dumps(payload), content_type="application/json"
        )

    def do_hide_a_fresh_paper(self, now: datetime) -> None:
        today = self.listings.by_day[-1]
        fresh = Paper.objects.filter(arxiv_id__in=today, title__iregex=r"language model|learning")
        self.hide(fresh.order_by("-upvotes").first(), now)

    def do_hide_a_sent_paper(self, now: datetime) -> None:
        recent = [arxiv_id for ids in self.listings.by_day[-3:-1] for arxiv_id in ids]
        self.hide(Paper.objects.get(arxiv_id=self.most_delivered(recent)), now)

    def hide(self, paper: Paper, now: datetime) -> None:
        self.admin.force_login(self.editor)
        response = self.admin.post(
            "/admin/digest/paper/", {"action": "hide", "_selected_action": [paper.pk]}
        )
        assert response.status_code == 302
        paper.refresh_from_db()
        assert paper.hidden
        self.account.hidden[paper.pk] = now
        self.account.hidden_arxiv_ids.append(paper.arxiv_id)

    def do_merge_the_duplicate(self, now: datetime) -> None:
        original, copy = self.duplicate
        ids = list(Paper.objects.filter(arxiv_id__in=[original, copy]).values_list("pk", flat=True))
        assert len(ids) == 2, "the retitled copy should have come in as a paper of its own"
        kept = Paper.objects.get(arxiv_id=original).pk
        self.admin.force_login(self.editor)
        action = {"action": "merge_duplicates", "_selected_action": ids}
        asked = self.admin.post("/admin/digest/paper/", action)
        assert asked.status_code == 200 and b"Merge these papers?" in asked.content
        response = self.admin.post("/admin/digest/paper/", {**action, "post": "yes", "keep": kept})
        assert response.status_code == 302
        self.account.merged.update({pk: kept for pk in ids if pk != kept})
        assert Paper.objects.filter(pk__in=ids).count() == 1

    def do_rate_from_the_email(self, who: str, now: datetime) -> None:
        """ "More like this" on the digest's first paper, "Less like this" on its second: the
        link opens a page with a button (a GET records nothing), the button records it."""
        text = self.last_email(who).text
        more = re.findall(r"^More like this: (\S+)$", text, re.MULTILINE)[0]
        less = re.findall(r"^Less like this: (\S+)$", text, re.MULTILINE)[1]
        for url in (more, less):
            path = urlsplit(url).path
            before = Rating.objects.count()
            assert self.web.get(path).status_code == 200
            assert Rating.objects.count() == before
            response = self.web.post(path)
            assert response.status_code == 200 and b"Noted:" in response.content
            self.account.rated.setdefault(who, {})[int(re.match(r"/papers/(\d+)/", path)[1])] = now
            self.wait_for_profile(who)

    def do_paste_papers_like_these(self, who: str, now: datetime) -> None:
        """The reader pastes the arXiv ids of the two papers their next digest would put first:
        rated up, so it never sends them, and the profile leans towards them."""
        coming = search_papers_for(Subscriber.objects.get(email=who))[:2]
        assert len(coming) == 2, "the reader's next digest should have papers to paste"
        papers = Paper.objects.in_bulk([match.paper_id for match in coming])
        preferences = self.preferences_path(who)
        seed = re.search(r'action="(/ratings/[^"]+/seed/)"', self.web.get(preferences).text)[1]
        pasted = "\n".join(f"arXiv:{papers[match.paper_id].arxiv_id}" for match in coming)
        response = self.web.post(seed, {"papers": pasted})
        assert response.status_code == 200, response.content[:2000]
        for match in coming:
            self.account.rated[who][match.paper_id] = now
        self.wait_for_profile(who)
        left = {match.paper_id for match in search_papers_for(Subscriber.objects.get(email=who))}
        assert not left & set(self.account.rated[who])

    def wait_for_profile(self, who: str) -> None:
        """The profile is learned from every rating off the request path: by the worker, or in
        this process with eager Celery."""
        deadline = monotonic_time.monotonic() + 30
        count = len(self.account.rated[who])
        learned = ReaderProfile.objects.filter(subscriber__email=who, ratings_count=count)
        while not learned.exists():
            assert monotonic_time.monotonic() < deadline, f"no profile of {count} ratings"
            monotonic_time.sleep(0.02)

    # --- what readers got ---------------------------------------------------------------------

    def most_delivered(self, arxiv_ids: list[str]) -> str:
        counts = Counter(
            DeliveredPaper.objects.filter(
                paper__arxiv_id__in=arxiv_ids, delivery__status=Delivery.Status.SENT
            ).values_list("paper__arxiv_id", flat=True)
        )
        assert counts, "nobody was sent any of these papers"
        return counts.most_common(1)[0][0]

    def read_outbox(self) -> list[Email]:
        """Parse the files that arrived since the last call; return the new digests (the
        confirmation emails go to `consent_emails`)."""
        new = []
        for path in sorted(self.outbox.glob("*.eml")) if self.outbox.exists() else []:
            if path.name in self.account.emails or path.name in self.consent_emails:
                continue
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            email = Email(
                message_id=message["Message-ID"].strip(),
                to=str(message["To"]),
                text=message.get_body(("plain",)).get_content(),
                headers=message,
            )
            if email.message_id.startswith("<digest."):
                self.account.emails[path.name] = email
                new.append(email)
            else:
                self.consent_emails[path.name] = email
        return new

    def last_email(self, who: str) -> Email:
        self.read_outbox()
        mine = [email for email in self.account.emails.values() if email.to == who]
        assert mine, f"{who} has no email to act on"
        sent = dict(
            Delivery.objects.filter(subscriber__email=who, status=Delivery.Status.SENT)
            .order_by("period")
            .values_list("message_id", "period")
        )
        return max(mine, key=lambda email: sent[email.message_id])

    def preferences_path(self, who: str) -> str:
        url = re.search(r"Change your topics or schedule: (\S+)", self.last_email(who).text)[1]
        return urlsplit(url).path

    # --- the checks after each day ------------------------------------------------------------

    def check_day(self, errors: ErrorLog) -> None:
        assert not errors.records, [record.getMessage() for record in errors.records]
        assert not DigestRun.objects.filter(finished_at__isnull=True).exists()
        runs = DigestRun.objects.exclude(status=DigestRun.Status.FINISHED)
        assert not runs.exists(), list(runs.values("status", "error"))
        assert set(IngestRun.objects.values_list("status", flat=True)) == {"succeeded"}
        assert not IngestRun.objects.filter(finished_at__isnull=True).exists()

        deliveries = {
            (row["subscriber__email"], row["period"]): row
            for row in Delivery.objects.values(
                "pk", "subscriber__email", "period", "status", "message_id", "run__now", "error"
            )
        }
        missing = self.account.expected - deliveries.keys()
        unexpected = deliveries.keys() - self.account.expected
        assert not missing, f"due but no digest or skip: {sorted(missing)[:5]}"
        assert not unexpected, f"not due, yet planned: {sorted(unexpected)[:5]}"
        statuses = Counter(row["status"] for row in deliveries.values())
        assert set(statuses) <= {"sent", "skipped"}, [
            row for row in deliveries.values() if row["status"] not in ("sent", "skipped")
        ][:3]

        sent = {row["message_id"]: row for row in deliveries.values() if row["status"] == "sent"}
        new_emails = self.read_outbox()
        handovers = Counter(email.message_id for email in self.account.emails.values())
        assert max(handovers.values(), default=1) == 1, "a digest was handed over twice"
        assert handovers.keys() == sent.keys()
        papers_of = self.delivered_papers({row["pk"] for row in sent.values()})
        for email in new_emails:
            row = sent[email.message_id]
            assert email.to == row["subscriber__email"]
            assert f"digest for {row['period']:%A, %-d %B %Y}" in email.text
            # Papers, not ids: a paper merged since the email went out is now the kept one.
            assert [self.paper_now(pk) for pk in email.paper_ids] == papers_of[row["pk"]]
            assert self.account.is_active(email.to, row["run__now"])
            rated = self.account.rated.get(email.to, {})
            for pk in email.paper_ids:
                hidden_at = self.account.hidden.get(pk)
                assert hidden_at is None or row["run__now"] < hidden_at, (pk, email.to)
                assert pk not in rated or row["run__now"] < rated[pk], (pk, email.to, "rated")
            self.per_reader_papers[email.to].extend(email.paper_ids)
        self.check_no_paper_twice()
        self.check_topics_and_nobodys_papers()

    def delivered_papers(self, delivery_ids: set[int]) -> dict[int, list[int]]:
        papers: dict[int, list[int]] = defaultdict(list)
        rows = DeliveredPaper.objects.filter(delivery_id__in=delivery_ids).order_by(
            "delivery_id", "position"
        )
        for delivery_id, paper_id in rows.values_list("delivery_id", "paper_id"):
            papers[delivery_id].append(paper_id)
        return papers

    def paper_now(self, pk: int) -> int:
        """The paper `pk` is now: one the editor merged away counts as the paper kept."""
        return self.account.merged.get(pk, pk)

    def check_no_paper_twice(self) -> None:
        for reader, papers in self.per_reader_papers.items():
            twice = [pk for pk, n in Counter(map(self.paper_now, papers)).items() if n > 1]
            assert not twice, f"{reader} got papers {twice} twice"
        rows = Counter(
            DeliveredPaper.objects.filter(delivery__status=Delivery.Status.SENT).values_list(
                "delivery__subscriber_id", "paper_id"
            )
        )
        assert max(rows.values(), default=1) == 1

    def check_topics_and_nobodys_papers(self) -> None:
        got = DeliveredPaper.objects.filter(delivery__status=Delivery.Status.SENT)
        assert not got.filter(paper__title__in=self.listings.unmatched_titles).exists()
        for nobody in (self.by_number[0], self.by_number[1]):
            assert not got.filter(delivery__subscriber__email=nobody).exists()
        changed = self.account.topics_changed_at
        if changed is not None:
            topics = set(
                got.filter(
                    delivery__subscriber__email=self.actor("changes topics"),
                    delivery__run__now__gt=changed,
                ).values_list("topic", flat=True)
            )
            assert topics <= set(NEW_TOPICS.splitlines())

    def duplicates(self) -> int:
        """Digests handed over more than once, and papers a reader got more than once."""
        handovers = Counter(email.message_id for email in self.account.emails.values())
        return sum(n - 1 for n in handovers.values()) + sum(
            len(papers) - len(set(map(self.paper_now, papers)))
            for papers in self.per_reader_papers.values()
        )

    def check_daylight_saving_days_were_due(self) -> None:
        """The account itself, on the days a clock jumps: a send hour the clock skips (Berlin
        at 02:00 on 29 March) or passes twice (Adelaide, Auckland, Lord Howe on 5 April)."""
        for number, day in [(2, "2026-03-29"), (53, "2026-04-05"), (13, "2026-04-05"),
                            (37, "2026-04-05"), (21, "2026-03-27")]:  # fmt: skip
            reader = self.readers[self.by_number[number]]
            assert (reader.email, date.fromisoformat(day)) in self.account.expected, reader

    # --- the month ----------------------------------------------------------------------------

    def run(self, days: int, errors: ErrorLog) -> str:
        started = monotonic_time.monotonic()
        self.clock.now = START
        self.import_readers()
        for day in range(days):
            midnight = START + timedelta(days=day)
            events: list[tuple[timedelta, int, object]] = [(INGEST_AT, 0, "ingest")]
            events += [(step.at, 1, step) for step in PLAN if step.day == day]
            events += [(TICK * n, 2, "tick") for n in range(timedelta(days=1) // TICK)]
            for offset, _, event in sorted(events, key=lambda event: event[:2]):
                now = midnight + offset
                self.clock.now = now
                if event == "ingest":
                    self.ingest(day)
                elif event == "tick":
                    self.tick(now)
                else:
                    self.act(event, now)
            self.drain()
            last_tick = midnight + timedelta(days=1) - TICK
            self.tick(last_tick + BEAT_AFTER_LAST_TICK)  # beat's next tick counts the runs
            self.check_day(errors)
        if days == DAYS:
            self.check_daylight_saving_days_were_due()
        statuses = Counter(Delivery.objects.values_list("status", flat=True))
        return (
            f"month: {days} days, {len(self.readers)} readers, "
            f"{len(self.account.emails):,} digests, {statuses['skipped']:,} skips, "
            f"{self.duplicates()} duplicates, {len(errors.records)} errors, "
            f"{self.account.ticks:,} ticks, "
            f"{monotonic_time.monotonic() - started:.0f} s"
        )


@pytest.fixture
def errors():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def month_settings(settings, outbox, monkeypatch):
    settings.EMAIL_BACKEND = BACKEND
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    clock = Clock(START)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.mark.django_db(transaction=True)  # the worker reads what the test commits
def test_a_month(request, month_settings, settings, outbox, tmp_path, errors, report):
    """Eager Celery on the embedded defaults; a real worker when CELERY_BROKER_URL is set (the
    services pass of CI, on PostgreSQL)."""
    if not settings.CELERY_BROKER_URL:
        line = run_month(month_settings, settings, outbox, tmp_path, errors, drain=lambda: None)
        report(f"{line} ({connection.vendor}, eager Celery)")
        return
    worker = request.getfixturevalue("celery_worker_process")
    worker.env["EMAIL_BACKEND"] = BACKEND
    worker.start()
    line = run_month(month_settings, settings, outbox, tmp_path, errors, drain=until_sent)
    problems = [line for line in worker.log if re.search(r"ERROR|CRITICAL|Traceback", line)]
    assert not problems, "".join(problems)
    report(f"{line} ({connection.vendor}, a real Celery worker)")


def run_month(clock, settings, outbox, tmp_path, errors, *, drain) -> str:
    month = Month(outbox=outbox, tmp_path=tmp_path, clock=clock, settings=settings, drain=drain)
    return month.run(DAYS, errors)


def until_sent(timeout: float = 60) -> None:
    """Wait for the worker to send what was queued (nothing is left planned or sending)."""
    deadline = monotonic_time.monotonic() + timeout
    pending = Delivery.objects.filter(status__in=[Delivery.Status.PLANNED, Delivery.Status.SENDING])
    while pending.exists():
        assert monotonic_time.monotonic() < deadline, "the worker left deliveries unsent"
        monotonic_time.sleep(0.02)
