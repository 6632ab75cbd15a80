"""What the month checks after each day, against its own account of who is due when."""

import logging
from collections import Counter, defaultdict
from datetime import date

from digest.models import (
    DeliveredPaper,
    Delivery,
    DigestRun,
    IngestRun,
)
from tests.simulation.cast import (
    NEW_TOPICS,
)


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class DayChecks:
    """The checks of the Month that mixes them in."""

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
