"""Recording a chunk's sent deliveries in one UPDATE, not one round trip (and commit) each; the
same UPDATE can be the fence of the next handover (claims.Fence.check), so that marking a
message sent and checking the claim on the next one cost one commit.

The rule, for a whole chunk: every delivery the ESP accepted from us that is still being sent is
marked sent, whichever worker's token it holds now, so a worker that took the claim over
meanwhile (and is fenced by the changed row) does not hand it over again.
The token each row held tells which were still ours and which had been taken over.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from digest.models import Delivery


@dataclass(frozen=True)
class Sent:
    """A delivery the ESP accepted: when, and the ids it carries."""

    delivery_id: int
    sent_at: datetime
    message_id: str
    esp_message_id: str


def _column(name: str) -> str:
    return connection.ops.quote_name(Delivery._meta.get_field(name).column)


def _value(name: str, value):
    return Delivery._meta.get_field(name).get_db_prep_save(value, connection)


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _assign(field: str, ids: Sequence[int], value, params: list, *, others: bool) -> str:
    """`column = value` on the rows `ids`; when the statement updates `others` too, they keep
    theirs."""
    column = _column(field)
    if not others:
        params.append(value)
        return f"{column} = %s"
    params += [*ids, value]
    return (
        f"{column} = CASE WHEN {_column('id')} IN ({_placeholders(ids)}) THEN %s ELSE {column} END"
    )


def _case(field: str, sent: Sequence[Sent], params: list) -> str:
    """`CASE id WHEN … THEN … END` for one column; the same SQL on PostgreSQL and SQLite."""
    whens = []
    for row in sent:
        whens.append("WHEN %s THEN %s")
        params += [row.delivery_id, _value(field, getattr(row, field))]
    column = _column(field)
    return f"{column} = CASE {_column('id')} {' '.join(whens)} ELSE {column} END"


@dataclass(frozen=True)
class Marked:
    """What mark_sent did: the deliveries still claimed with our token, and the others (taken
    over while being sent: marked too if still being sent, left alone if already finished); and
    of the claims it was asked to hold, those that are still ours."""

    ours: frozenset[int]
    taken_over: frozenset[int]
    held: frozenset[int] = frozenset()


def mark_sent(
    sent: Sequence[Sent],
    token: str,
    *,
    hold: Sequence[int] = (),
    held_at: datetime | None = None,
    only_ours: bool = False,
) -> Marked:
    """Mark the deliveries the ESP accepted from the claim `token` sent, in one statement. With
    `hold`, the same statement (one round trip, one commit) is also the fence of those claims
    (claims.hold): which of them still hold `token`, their claimed_at moved to `held_at`.
    `only_ours`: mark only those still held by `token` (a message about to be let through)."""
    sent_ids = {row.delivery_id for row in sent}
    hold = [pk for pk in hold if pk not in sent_ids]
    if not sent and not hold:
        return Marked(frozenset(), frozenset())
    with connection.cursor() as cursor:
        cursor.execute(*_marking_and_holding(sent, token, hold, held_at, only_ours=only_ours))
        rows = cursor.fetchall()
    ours = frozenset(pk for pk, held_by in rows if pk in sent_ids and held_by == token)
    held = frozenset(pk for pk, _ in rows if pk not in sent_ids)
    return Marked(ours, frozenset(sent_ids) - ours, held)


def _marking_and_holding(
    sent: Sequence[Sent],
    token: str,
    hold: Sequence[int],
    held_at: datetime | None,
    *,
    only_ours: bool,
) -> tuple[str, list]:
    sent_ids = [row.delivery_id for row in sent]
    params: list = []
    assignments = []
    if sent:
        for field, value in (("status", Delivery.Status.SENT.value), ("error", "")):
            assignments.append(_assign(field, sent_ids, value, params, others=bool(hold)))
        fields = ("sent_at", "message_id", "esp_message_id")
        assignments += [_case(field, sent, params) for field in fields]
    if hold:
        held_value = _value("claimed_at", held_at)
        assignments.append(_assign("claimed_at", hold, held_value, params, others=bool(sent)))
    params.append(Delivery.Status.SENDING.value)
    matches = []
    held_by_us = f"{_column('claim_token')} = %s"
    if sent and only_ours:
        matches.append(f"({_column('id')} IN ({_placeholders(sent_ids)}) AND {held_by_us})")
        params += [*sent_ids, token]
    elif sent:
        matches.append(f"{_column('id')} IN ({_placeholders(sent_ids)})")
        params += sent_ids
    if hold:
        matches.append(f"({_column('id')} IN ({_placeholders(hold)}) AND {held_by_us})")
        params += [*hold, token]
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)}"
        f" SET {', '.join(assignments)}"
        f" WHERE {_column('status')} = %s AND ({' OR '.join(matches)})"
        f" RETURNING {_column('id')}, {_column('claim_token')}"
    )
    return sql, params
