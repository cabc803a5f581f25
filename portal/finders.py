"""Serve Plotly's own bundle (``plotly.min.js`` in the ``plotly`` wheel) as a static file.

No copy is kept in the repository and nothing is fetched from a CDN: the file the installed
wheel ships is found here as ``vendor/plotly.min.js`` by ``runserver``, the live test server
and ``collectstatic``.
"""
from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PLOTLY_PATH = "vendor/plotly.min.js"


def plotly_bundle() -> Path | None:
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        if plotly_bundle() is None:
            return [Error("plotly.min.js not found: install the 'plotly' package (requirements.txt)",
                          id="portal.E001")]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        bundle = plotly_bundle() if path == PLOTLY_PATH else None
        if bundle is None:
            return [] if find_all else None
        return [str(bundle)] if find_all else str(bundle)

    def list(self, ignore_patterns):
        bundle = plotly_bundle()
        if bundle is not None:
            # collectstatic copies list()'s (path, storage) pairs; map the bundle under vendor/.
            yield PLOTLY_PATH, _SingleFileStorage(bundle)


class _SingleFileStorage(FileSystemStorage):
    """A storage holding one file, exposed under ``vendor/plotly.min.js``."""

    def __init__(self, bundle: Path) -> None:
        super().__init__(location=str(bundle.parent))
        self._bundle = bundle

    def path(self, name: str) -> str:
        return str(self._bundle)

    def open(self, name: str, mode: str = "rb"):
        return open(self._bundle, mode)
