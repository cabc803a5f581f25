"""Tasking as a plain CSV: one row per job and filter, for people and other tools."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from scheduling.exports.ekos import iso_utc
from scheduling.night_plan import TaskingJob

COLUMNS = ("order", "target", "ra_hours", "ra_deg", "dec_deg", "start_utc", "end_utc", "filter", "exposure_sec",
           "count", "min_altitude_deg", "moon_separation_deg", "priority", "group")


def tasking_csv(jobs: Sequence[TaskingJob]) -> str:
    """CSV text (header row, then one row per job step, '.' decimals, times ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for order, job in enumerate(jobs, start=1):
        for step in job.steps:
            writer.writerow([order, job.name, f"{job.ra_deg / 15:.6f}", f"{job.ra_deg:.6f}", f"{job.dec_deg:.6f}",
                             iso_utc(job.start), iso_utc(job.end), step.filter, f"{step.exposure_sec:g}", step.count,
                             f"{job.min_altitude_deg:g}", f"{job.moon_separation_deg:g}", f"{job.priority:g}",
                             job.group])
    return out.getvalue()
