"""Portal fixtures: a throwaway frame storage for every test (previews are real files)."""
import pytest

from tests.observations.conftest import frame_store  # noqa: F401  (the same throwaway storage)


@pytest.fixture(autouse=True)
def _frames_in_tmp(frame_store):  # noqa: F811
    return frame_store
