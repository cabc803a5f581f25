"""Database helpers shared by the apps: PostgreSQL-only migration steps for Q3C.

The Q3C extension and its functional indexes exist only on PostgreSQL. On SQLite (the
embedded default) these operations do nothing and the cone search uses its exact
great-circle fallback (`targets.sky`). The indexes are kept out of the models' ``Meta`` on
purpose: SQLite rebuilds tables from the model state and would try to create them.
"""
from __future__ import annotations

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    """`RunSQL` that runs on PostgreSQL and is a no-op on every other backend."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class CreateQ3CExtension(migrations.RunPython):
    """Create the ``q3c`` extension on PostgreSQL, failing with instructions if it cannot."""

    def __init__(self) -> None:
        super().__init__(self._create, migrations.RunPython.noop, elidable=False)

    @staticmethod
    def _create(apps, schema_editor) -> None:
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'q3c'")
            if cursor.fetchone():
                return
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'q3c'")
            if not cursor.fetchone():
                raise RuntimeError(
                    "PostgreSQL has no q3c extension: install the Debian package "
                    "postgresql-<major>-q3c (scripts/services.sh does), then migrate again."
                )
            # Needs a superuser (q3c is not a trusted extension). A deployment whose app role
            # is not one creates it once as postgres, in the database or in template1.
            cursor.execute("CREATE EXTENSION IF NOT EXISTS q3c")


def q3c_index(table: str, name: str, ra: str = "ra_deg", dec: str = "dec_deg") -> PostgresOnlySQL:
    """A functional ``q3c_ang2ipix(ra, dec)`` index on ``table`` (PostgreSQL only)."""
    return PostgresOnlySQL(
        sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" (q3c_ang2ipix("{ra}", "{dec}"))',
        reverse_sql=f'DROP INDEX IF EXISTS "{name}"',
    )
