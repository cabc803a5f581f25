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
