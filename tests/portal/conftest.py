"""Portal fixtures: a throwaway frame storage for every test (previews are real files), the portal world."""
import pytest

from tests.observations.conftest import frame_store  # noqa: F401  (the same throwaway storage)
from tests.portal.factories import build_portal_world


@pytest.fixture(autouse=True)
def _frames_in_tmp(frame_store):  # noqa: F811
    return frame_store


@pytest.fixture
def world():
    """`build_portal_world`: two networks, each with a light curve and a previewed frame."""
    return build_portal_world()
