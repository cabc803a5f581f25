"""Read the bundled demo catalogue (targets/data/demo_catalogue.csv) into plain records."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from astropy import units as u
from astropy.coordinates import Angle

DEMO_CATALOGUE = Path(__file__).resolve().parent / "data" / "demo_catalogue.csv"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    aliases: tuple[str, ...]
    ra_deg: float
    dec_deg: float
    target_type: str
    magnitude: float | None
    period_days: float | None
    notes: str


def read_catalogue(path: Path = DEMO_CATALOGUE) -> list[CatalogueEntry]:
    """Parse a catalogue CSV (sexagesimal J2000 positions) into degrees.

    Raises
    ------
    ValueError
        With the line number, when a row's position or magnitude cannot be read.
    """
    with path.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    entries = []
    for number, row in enumerate(csv.DictReader(lines), start=2):
        try:
            ra = Angle(row["ra"], unit=u.hourangle).wrap_at(360 * u.deg).deg
            dec = Angle(row["dec"], unit=u.deg).deg
            magnitude = float(row["mag"]) if row["mag"] else None
            period = float(row["period_d"]) if row["period_d"] else None
        except (ValueError, u.UnitsError) as exc:
            raise ValueError(f"{path.name} data row {number} ({row.get('name')}): {exc}") from exc
        if not (0 <= ra < 360 and -90 <= dec <= 90):
            raise ValueError(f"{path.name} data row {number} ({row['name']}): position out of range")
        aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
        entries.append(CatalogueEntry(row["name"], aliases, round(ra, 6), round(dec, 6), row["type"], magnitude,
                                      period, row["notes"]))
    return entries
