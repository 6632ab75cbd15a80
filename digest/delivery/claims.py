"""Claims: the database is the lock (like healthchecks' sendreports).

A delivery is claimed with a conditional UPDATE (planned -> sending) before anything is sent, so a
retried or redelivered task finds nothing to do; a claim whose worker died is taken over after
DIGEST_CLAIM_TIMEOUT_SECONDS, and a release touches only a claim that is still ours."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from digest.models import Delivery

# The claim and the release are written as plain SQL, as the ORM would write them: the ORM has
# no UPDATE ... RETURNING, and building its query costs ten times as much as running it.


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


def _value(name: str, value):
    return Delivery._meta.get_field(name).get_db_prep_save(value, connection)


def claim(delivery_ids: Sequence[int], now: datetime) -> set[int]:
    """planned (and due) -> sending, or take over a claim older than the timeout, for a whole
    chunk in one UPDATE; returns the ids that are ours (another worker's claims are left alone)."""
    if not delivery_ids:
        return set()
    stale = now - timedelta(seconds=settings.DIGEST_CLAIM_TIMEOUT_SECONDS)
    status, claimed_at, next_attempt_at = map(_column, ["status", "claimed_at", "next_attempt_at"])
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)}"
        f" SET {status} = %s, {claimed_at} = %s, {_column('attempts')} = {_column('attempts')} + 1"
        f" WHERE {_column('id')} IN ({', '.join(['%s'] * len(delivery_ids))}) AND ("
        f"({status} = %s AND ({next_attempt_at} IS NULL OR {next_attempt_at} <= %s))"
        f" OR ({status} = %s AND {claimed_at} < %s))"
        f" RETURNING {_column('id')}"
    )
    params = [
        Delivery.Status.SENDING.value,
        _value("claimed_at", now),
        *delivery_ids,
        Delivery.Status.PLANNED.value,
        _value("next_attempt_at", now + timedelta(seconds=1)),
        Delivery.Status.SENDING.value,
        _value("claimed_at", stale),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def release(delivery: Delivery, claimed_at: datetime, **fields) -> bool:
    """Update our own claim only: a claim taken over by another worker is no longer ours."""
    assignments = ", ".join(f"{_column(name)} = %s" for name in fields)
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} SET {assignments}"
        f" WHERE {_column('id')} = %s AND {_column('status')} = %s"
        f" AND {_column('claimed_at')} = %s"
    )
    params = [_value(name, value) for name, value in fields.items()]
    params += [delivery.pk, Delivery.Status.SENDING.value, _value("claimed_at", claimed_at)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
