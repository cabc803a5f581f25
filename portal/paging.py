"""Server-side pagination without COUNT(*): a page fetches one row more than it shows.

Counting a million frames costs more than showing fifty of them, so pages say only whether
there is a next one.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest

PER_PAGE = 50
MAX_PAGE = 10_000


@dataclass
class Page:
    rows: list
    number: int
    has_next: bool
    query: dict

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    def _link(self, number: int) -> str:
        return "?" + urlencode({**self.query, "page": number})

    @property
    def next_link(self) -> str:
        return self._link(self.number + 1)

    @property
    def previous_link(self) -> str:
        return self._link(self.number - 1)


def page_of(queryset: QuerySet, request: HttpRequest, per_page: int = PER_PAGE) -> Page:
    """Rows of page ``?page=`` (1-based; a bad or huge number gives the first/last allowed page)."""
    try:
        number = min(max(int(request.GET.get("page", 1)), 1), MAX_PAGE)
    except ValueError:
        number = 1
    start = (number - 1) * per_page
    rows = list(queryset[start:start + per_page + 1])
    query = {k: v for k, v in request.GET.items() if k != "page" and v != ""}
    return Page(rows[:per_page], number, len(rows) > per_page, query)
