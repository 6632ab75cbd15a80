"""The month's machinery: its clock, its account of who is due when, and the Month itself."""

import base64
import re
import time as monotonic_time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from digest import tasks
from digest.models import (
    DeliveredPaper,
    Delivery,
)
from subscriptions.models import Subscriber
from tests.simulation.cast import (
    ACTORS,
    BEAT_AFTER_LAST_TICK,
    DAYS,
    INGEST_AT,
    MERGE_DAY,
    PLAN,
    RELIST_HIDDEN_DAY,
    START,
    TICK,
    WEBHOOK_SECRET,
    Reader,
    Step,
    cast,
)
from tests.simulation.day_checks import DayChecks, ErrorLog
from tests.simulation.listings import Listings
from tests.simulation.reader_actions import ReaderActions


class Clock:
    """Stands in for django.utils.timezone.now."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
    confirmed: dict[str, datetime] = field(default_factory=dict)  # on the site: first digest after

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
            confirmed = self.confirmed.get(reader.email)
            if now >= send_at and (confirmed is None or send_at >= confirmed):
                self.expected.add((reader.email, local_date))


class Month(ReaderActions, DayChecks):
    """Drives the month; `drain` waits until the tasks queued so far have run (the sending, and
    the embedding of new papers)."""

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
        # With a worker, the new papers are embedded there: the day's ticks would otherwise rank
        # with or without their vectors as the race goes, and no two months would be alike.
        self.drain()

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
