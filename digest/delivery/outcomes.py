"""Recording a chunk's sent deliveries in one UPDATE, not one round trip (and commit) each.

Like a release (claims.release), the UPDATE touches only the deliveries still claimed by us
(status "sending" and our claimed_at): a claim another worker took over is not ours to mark.
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


def mark_sent(sent: Sequence[Sent], claimed_at: datetime) -> set[int]:
    """Mark the deliveries sent, those still claimed by us at `claimed_at`, in one statement;
    returns the ids marked (any other was taken over while it was being sent)."""
    if not sent:
        return set()
    params: list = [Delivery.Status.SENT.value, ""]
    assignments = [f"{_column('status')} = %s", f"{_column('error')} = %s"]
    assignments += [_case(field, sent, params) for field in ("sent_at", "message_id")]
    assignments.append(_case("esp_message_id", sent, params))
    params += [row.delivery_id for row in sent]
    params += [Delivery.Status.SENDING.value, _value("claimed_at", claimed_at)]
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)}"
        f" SET {', '.join(assignments)}"
        f" WHERE {_column('id')} IN ({', '.join(['%s'] * len(sent))})"
        f" AND {_column('status')} = %s AND {_column('claimed_at')} = %s"
        f" RETURNING {_column('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
