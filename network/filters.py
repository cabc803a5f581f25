"""Query filters shared by every API list."""
from datetime import UTC

import django_filters
from django import forms

# The largest primary key PostgreSQL's bigint and SQLite's INTEGER can hold.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number the database can hold, else a 400 that names the parameter.

    (A bare NumberFilter passes 10**23 through to the database, which overflows: a 500.)
    """

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO-8601 time, compared in UTC.

    ``2026-01-01T00:00:00+20:00`` is a valid ISO time, but PostgreSQL refuses offsets beyond
    15:59 ("time zone displacement out of range", a 500); in UTC every offset is fine.
    """

    def filter(self, qs, value):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return super().filter(qs, value)
