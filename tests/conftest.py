"""Shared fixtures. Data factories live beside the tests that use them (tests/<app>/factories.py)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real reference files beside the project (../shared/data, see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the real test data lives beside the checkout")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _fresh_schedule_cache(request):
    """Ranked lists are cached by site id, and ids repeat across tests: each database test starts
    with an empty cache (the Redis test database, or the in-process one)."""
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from django.core.cache import cache
        cache.clear()
    yield


@pytest.fixture
def scheduler_night(monkeypatch):
    """Freeze the network scheduler's clock at a known dark night at La Palma
    (``tests/network/schedule_helpers.NIGHT``); returns that time."""
    from tests.scheduling.helpers import NIGHT
    monkeypatch.setattr("scheduling.passes._now", lambda: NIGHT)
    return NIGHT
