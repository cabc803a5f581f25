"""Files DATAS writes for other tools: tasking for KStars/Ekos and N.I.N.A., plain CSV.

``tasking_files`` is the one entry point for tasking writers: it takes the planned jobs, the
site's filter names and the format's options, and returns ``{file name: text}``.
"""
from __future__ import annotations

from collections.abc import Sequence

from scheduling.exports.csv_tasking import tasking_csv
from scheduling.exports.ekos import EkosOptions, ekos_files
from scheduling.exports.nina import nina_files
from scheduling.night_plan import TaskingError, TaskingJob

TASKING_FORMATS = ("ekos", "nina", "csv")


def tasking_files(fmt: str, jobs: Sequence[TaskingJob], site_filters: Sequence[str], *,
                  ekos_options: EkosOptions | None = None, nina_template: dict | None = None) -> dict[str, str]:
    """Tasking files in format ``fmt`` (``ekos``, ``nina`` or ``csv``): file name -> text."""
    if fmt == "ekos":
        return ekos_files(jobs, site_filters, ekos_options or EkosOptions())
    if fmt == "nina":
        if nina_template is None:
            raise TaskingError("N.I.N.A. export needs a template: save a target or sequence from N.I.N.A.")
        return nina_files(nina_template, jobs, site_filters)
    if fmt == "csv":
        return {"tasking.csv": tasking_csv(jobs)}
    raise TaskingError(f"unknown tasking format {fmt!r}; use one of {', '.join(TASKING_FORMATS)}")


__all__ = ["TASKING_FORMATS", "EkosOptions", "TaskingError", "TaskingJob", "tasking_files"]
