"""Handing out a chosen id next, as a second database (or SQLite, once a table's rows
are gone after a flush or a rolled-back transaction) would."""

from django.db import connection


def next_id_will_be(model, value: int) -> None:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, value - 1]
            )
        else:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, %s)",
                [table, max(value - 1, 1), value > 1],
            )
