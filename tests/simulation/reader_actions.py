"""What readers and the editor do during the month, through the real pages, links and admin."""

import json
import re
import time as monotonic_time
from datetime import datetime
from io import StringIO
from urllib.parse import urlsplit

from django.core.management import call_command

from digest.matching import search_papers_for
from digest.models import (
    IngestRun,
    Paper,
    Rating,
    ReaderProfile,
)
from subscriptions.models import Subscriber
from tests.simulation.cast import (
    ACTORS,
    MOVES,
    NEW_TOPICS,
    NEWCOMER,
    RATING_FLOOD_LIMIT,
    START,
    Reader,
)


class ReaderActions:
    """The steps of the PLAN, as methods of the Month that mixes them in."""

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
        self.account.confirmed[reader.email] = now  # the first digest is at the next send time

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
        for path in self.rating_paths(who):
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

    def do_flood_the_rating_links(self, who: str, now: datetime) -> None:
        """A script posts the first paper's "More like this" again and again: past the limit it
        gets 429 with Retry-After and nothing is recorded, and its digests go on (day checks)."""
        more, less = self.rating_paths(who)
        limit, self.settings.RATING_LIMIT_PER_READER = (
            self.settings.RATING_LIMIT_PER_READER,
            RATING_FLOOD_LIMIT,
        )
        try:
            answers = [self.web.post(more).status_code for _ in range(RATING_FLOOD_LIMIT + 6)]
            refused = self.web.post(less)
        finally:
            self.settings.RATING_LIMIT_PER_READER = limit
        assert answers == [200] * RATING_FLOOD_LIMIT + [429] * 6
        assert refused.status_code == 429 and refused["Retry-After"]
        paper_id = int(re.match(r"/papers/(\d+)/", more)[1])
        assert list(Rating.objects.filter(subscriber__email=who).values_list("paper", "value")) == [
            (paper_id, Rating.Value.MORE)
        ]
        self.account.rated.setdefault(who, {})[paper_id] = now
        self.wait_for_profile(who)

    def rating_paths(self, who: str) -> tuple[str, str]:
        """The paths of "More like this" on the last digest's first paper and "Less like this"
        on its second."""
        text = self.last_email(who).text
        more = re.findall(r"^More like this: (\S+)$", text, re.MULTILINE)[0]
        less = re.findall(r"^Less like this: (\S+)$", text, re.MULTILINE)[1]
        return urlsplit(more).path, urlsplit(less).path

    def wait_for_profile(self, who: str) -> None:
        """The profile is learned from every rating off the request path: by the worker, or in
        this process with eager Celery."""
        deadline = monotonic_time.monotonic() + 30
        count = len(self.account.rated[who])
        learned = ReaderProfile.objects.filter(subscriber__email=who, ratings_count=count)
        while not learned.exists():
            assert monotonic_time.monotonic() < deadline, f"no profile of {count} ratings"
            monotonic_time.sleep(0.02)
