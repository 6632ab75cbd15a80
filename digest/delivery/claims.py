"""Claims: the database is the lock (like healthchecks' sendreports), and each claim is fenced.

A delivery is claimed with a conditional UPDATE (planned -> sending) before anything is sent, so a
retried or redelivered task finds nothing to do; a claim whose worker died is taken over after
DIGEST_CLAIM_TIMEOUT_SECONDS. Every claim carries a random token: right before each message is
handed to the ESP its sender checks (and extends) that the row still holds its token, so a worker
whose claim was taken over (its clock jumped, it was paused, its ESP was slow) sends nothing more,
and a release touches only a claim that still holds the token."""

import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from digest.delivery.outcomes import Marked, Sent, mark_sent
from digest.models import Delivery

# The claim and the release are written as plain SQL, as the ORM would write them: the ORM has
# no UPDATE ... RETURNING, and building its query costs ten times as much as running it.


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


def _value(name: str, value):
    return Delivery._meta.get_field(name).get_db_prep_save(value, connection)


def _table() -> str:
    return connection.ops.quote_name(Delivery._meta.db_table)


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def new_token() -> str:
    return secrets.token_hex(16)


def claim(delivery_ids: Sequence[int], now: datetime, token: str) -> set[int]:
    """planned (and due) -> sending, or take over a claim older than the timeout, for a whole
    chunk in one UPDATE; returns the ids that are ours (another worker's claims are left alone)."""
    if not delivery_ids:
        return set()
    stale = now - timedelta(seconds=settings.DIGEST_CLAIM_TIMEOUT_SECONDS)
    status, claimed_at, next_attempt_at = map(_column, ["status", "claimed_at", "next_attempt_at"])
    sql = (
        f"UPDATE {_table()}"
        f" SET {status} = %s, {claimed_at} = %s, {_column('claim_token')} = %s,"
        f" {_column('attempts')} = {_column('attempts')} + 1"
        f" WHERE {_column('id')} IN ({_placeholders(delivery_ids)}) AND ("
        f"({status} = %s AND ({next_attempt_at} IS NULL OR {next_attempt_at} <= %s))"
        f" OR ({status} = %s AND {claimed_at} < %s))"
        f" RETURNING {_column('id')}"
    )
    params = [
        Delivery.Status.SENDING.value,
        _value("claimed_at", now),
        token,
        *delivery_ids,
        Delivery.Status.PLANNED.value,
        _value("next_attempt_at", now + timedelta(seconds=1)),
        Delivery.Status.SENDING.value,
        _value("claimed_at", stale),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def hold(delivery_ids: Sequence[int], token: str, now: datetime) -> set[int]:
    """The fence and the heartbeat in one UPDATE: which of these claims still hold our token,
    their claimed_at moved to `now` so that nobody takes over work that is going on."""
    return set(mark_sent((), token, hold=delivery_ids, held_at=now).held)


def release(
    delivery: Delivery, token: str, *, was: str = Delivery.Status.SENDING, **fields
) -> bool:
    """Update our own claim only: a claim taken over by another worker is no longer ours. `was`:
    the status our claim left the row in (sent, when the server refused a message we had marked
    sent before its end: Fence.mark_sent_if_ours)."""
    assignments = ", ".join(f"{_column(name)} = %s" for name in fields)
    sql = (
        f"UPDATE {_table()} SET {assignments}"
        f" WHERE {_column('id')} = %s AND {_column('status')} = %s"
        f" AND {_column('claim_token')} = %s"
    )
    params = [_value(name, value) for name, value in fields.items()]
    params += [delivery.pk, str(was), token]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


class Fence:
    """A chunk's claim as its sender sees it: checked right before each handover, and extended
    for the whole chunk whenever a quarter of the timeout has passed by the monotonic clock (a
    slow ESP) or by the wall clock (a clock that jumped, which would otherwise make our live
    claims look stale to the other workers). The whole chunk, because the messages the ESP has
    accepted stay claimed until the chunk is marked sent (outcomes.mark_sent)."""

    def __init__(self, delivery_ids: Sequence[int], token: str, now: datetime) -> None:
        self.chunk = list(delivery_ids)
        self.token = token
        self.interval = settings.DIGEST_CLAIM_TIMEOUT_SECONDS / 4
        self.beat_at = (time.monotonic(), now)

    def ours_of(self, delivery_ids: Sequence[int], now: datetime) -> set[int]:
        """Which of `delivery_ids` (a batch about to be handed over) are still ours, in one
        UPDATE that is also the heartbeat when one is due."""
        return set(self.check(delivery_ids, now).held)

    def check(
        self, delivery_ids: Sequence[int], now: datetime, *, marking: Sequence[Sent] = ()
    ) -> Marked:
        """ours_of, in the same UPDATE that marks `marking` sent (outcomes.mark_sent): the
        sender's one write between two handovers. `held` holds the ids still ours."""
        ids = self._due_for_heartbeat(now) or list(delivery_ids)
        marked = mark_sent(marking, self.token, hold=ids, held_at=now)
        return Marked(marked.ours, marked.taken_over, marked.held & frozenset(delivery_ids))

    def mark_sent_if_ours(self, handing_over: Sequence[Sent], now: datetime) -> frozenset[int]:
        """Mark those of `handing_over` whose claim is still ours sent (their ids), in one UPDATE
        that is also the heartbeat when one is due; over SMTP its transaction commits right after
        the messages' last lines (smtp_sending)."""
        ids = self._due_for_heartbeat(now) or []
        return mark_sent(handing_over, self.token, hold=ids, held_at=now, only_ours=True).ours

    def _due_for_heartbeat(self, now: datetime) -> list[int] | None:
        monotonic_then, wall_then = self.beat_at
        if (
            time.monotonic() - monotonic_then >= self.interval
            or abs((now - wall_then).total_seconds()) >= self.interval
        ):
            self.beat_at = (time.monotonic(), now)
            return self.chunk  # only rows still "sending" with our token are extended
        return None
