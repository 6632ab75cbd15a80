"""Recording a chunk's sent deliveries in one UPDATE, not one round trip (and commit) each.

The rule is claims.record_accepted's, for a whole chunk: every delivery the ESP accepted from us
that is still being sent is marked sent, whichever worker's token it holds now, so a worker that
took the claim over meanwhile (and is fenced by the changed row) does not hand it over again.
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


def _case(field: str, sent: Sequence[Sent], params: list) -> str:
    """`CASE id WHEN … THEN … END` for one column; the same SQL on PostgreSQL and SQLite."""
    whens = []
    for row in sent:
        whens.append("WHEN %s THEN %s")
        params += [row.delivery_id, _value(field, getattr(row, field))]
    return f"{_column(field)} = CASE {_column('id')} {' '.join(whens)} END"


@dataclass(frozen=True)
class Marked:
    """What mark_sent did: the deliveries still claimed with our token, and the others (taken
    over while being sent: marked too if still being sent, left alone if already finished)."""

    ours: frozenset[int]
    taken_over: frozenset[int]


def mark_sent(sent: Sequence[Sent], token: str) -> Marked:
    """Mark the deliveries the ESP accepted from the claim `token` sent, in one statement."""
    if not sent:
        return Marked(frozenset(), frozenset())
    params: list = [Delivery.Status.SENT.value, ""]
    assignments = [f"{_column('status')} = %s", f"{_column('error')} = %s"]
    assignments += [_case(field, sent, params) for field in ("sent_at", "message_id")]
    assignments.append(_case("esp_message_id", sent, params))
    params += [row.delivery_id for row in sent]
    params.append(Delivery.Status.SENDING.value)
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)}"
        f" SET {', '.join(assignments)}"
        f" WHERE {_column('id')} IN ({', '.join(['%s'] * len(sent))})"
        f" AND {_column('status')} = %s"
        f" RETURNING {_column('id')}, {_column('claim_token')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ours = frozenset(pk for pk, held_by in cursor.fetchall() if held_by == token)
    return Marked(ours, frozenset(row.delivery_id for row in sent) - ours)
