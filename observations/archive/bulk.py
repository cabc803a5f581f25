"""Inserting thousands of rows at once: PostgreSQL's COPY, with Django's values.

Django's ``bulk_create`` on PostgreSQL sends each column as one array (``UNNEST``), which
escapes every quote of every JSON document again: most of a header-only catalogue's time.
COPY takes the rows as they are. The values are what Django would write
(``Field.get_db_prep_save``); the new ids are read back by a unique key. Other databases
use ``bulk_create``.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def insert_rows(model: type[models.Model], objects: Sequence[models.Model], key: str, scope: dict) -> None:
    """Insert ``objects`` and set their primary keys. ``key`` is a field unique within
    ``scope`` (filter keywords, e.g. the network), used to read the ids back."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = model._meta.db_table
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, which has copy()
        with raw.copy(f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN") as copy:
            for obj in objects:
                for field in fields:
                    if getattr(obj, field.attname) is None and field.has_default():
                        setattr(obj, field.attname, field.get_default())
                copy.write_row([field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields])
    key_field = model._meta.get_field(key)
    values = [getattr(obj, key_field.attname) for obj in objects]
    found = dict(model.objects.filter(**scope, **{f"{key}__in": values}).values_list(key, "pk"))
    for obj in objects:
        obj.pk = found[getattr(obj, key_field.attname)]
        obj._state.adding = False
        obj._state.db = "default"
