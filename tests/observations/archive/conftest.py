"""The seeded synthetic share, written once per test session (read-only for the tests)."""
from __future__ import annotations

import shutil

import pytest

from tests.observations.archive.share import make_share


@pytest.fixture(scope="session")
def share_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("share")
    return root, make_share(root)


@pytest.fixture
def share(share_root, tmp_path):
    """A private copy of the share (tests may move, rename or add files)."""
    root, truth = share_root
    copy = tmp_path / "nas"
    shutil.copytree(root, copy)
    rebased = type(truth)(**{name: {str(path).replace(str(root), str(copy)): value for path, value in table.items()}
                             for name, table in vars(truth).items()})
    return copy, rebased
