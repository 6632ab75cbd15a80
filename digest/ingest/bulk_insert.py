"""Inserting many new rows fast: COPY on PostgreSQL, elsewhere one prepared INSERT run by
executemany. bulk_create compiles SQL per value, which was most of a first ingest's time
(bench/ingest.py) and of planning a round's papers (bench/day.py). Used by ingest's store and
delivery's planning; the rows get no primary keys back (neither needs them)."""

from collections.abc import Iterable, Sequence

from django.db import connection, models

# Strings, integers, floats, booleans and None go to the driver as they are (what
# get_db_prep_save would return for them, at a fraction of the cost); these need the field's hand.
_PREPARED_TYPES = {"JSONField", "DateField", "DateTimeField"}


def insert_instances(model: type[models.Model], objects: Iterable[models.Model]) -> None:
    """Insert `objects`, unsaved instances of `model`, every column but the primary key."""
    names = [field.attname for field in model._meta.concrete_fields if not field.primary_key]
    insert_rows(model, names, ([getattr(item, name) for name in names] for item in objects))


def insert_rows(
    model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """Insert `rows` of values for the fields `names` (attnames: `paper_id`, not `paper`) of
    `model`, without building an instance per row."""
    fields = [model._meta.get_field(name) for name in names]
    prepared = [
        index for index, field in enumerate(fields) if field.get_internal_type() in _PREPARED_TYPES
    ]

    def database_values(row: Sequence[object]) -> list[object]:
        values = list(row)
        for index in prepared:
            values[index] = fields[index].get_db_prep_save(values[index], connection)
        return values

    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(database_values(row))
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",
                (database_values(row) for row in rows),
            )
