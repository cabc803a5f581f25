"""Each network's rules applied to a batch of alerts: which rule matched, and why the others did not.

The cheap conditions (source, type, class, scores, magnitude, error, sky region) are checked
per alert; "reachable by at least N sites within M hours" runs the scheduler's visibility
(:mod:`datas_pipeline.sky.visibility`, :func:`datas_pipeline.sky.windows.constraint_margin`) once per batch for the
alerts still in the running.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from datas_pipeline.sky.visibility import altaz, moon_altaz, moon_separation_deg, sun_altaz
from datas_pipeline.sky.windows import availability_margin, constraint_margin

from targets.alerts.models import AlertRule
from targets.alerts.sources.base import ParsedAlert

# A site reaches an alert when it can watch it for at least this long (seconds).
MIN_WINDOW_S = 600.0
GRID_STEP_S = 300.0


@dataclass
class Verdict:
    """One alert against every rule: the first rule that matched, and each rule's reasons."""

    rule: AlertRule | None = None
    report: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Reach:
    """The sites a network can schedule (their observatories), for the reachability condition."""

    names: list[str]
    observatories: list
    availability: list


def _galactic_latitudes(alerts: Sequence[ParsedAlert]) -> np.ndarray:
    if not alerts:
        return np.zeros(0)
    coords = SkyCoord([a.ra_deg for a in alerts] * u.deg, [a.dec_deg for a in alerts] * u.deg, frame="icrs")
    return coords.galactic.b.deg


def _class_reasons(rule: AlertRule, alert: ParsedAlert) -> list[str]:
    scores = {k.casefold(): v for k, v in alert.classification.items()}
    if rule.classifications:
        wanted = [c.casefold() for c in rule.classifications]
        held = [scores[c] for c in wanted if c in scores]
        if not held:
            return [f"class {sorted(alert.classification) or 'none'} is not one of {rule.classifications}"]
        best = max(held)
    elif rule.min_classification_score is not None:
        best = max(scores.values(), default=None)
        if best is None:
            return ["the alert carries no classification"]
    else:
        return []
    if rule.min_classification_score is not None and best < rule.min_classification_score:
        return [f"class score {best:.2f} below {rule.min_classification_score:.2f}"]
    return []


def cheap_reasons(rule: AlertRule, alert: ParsedAlert, galactic_b: float) -> list[str]:
    """Why ``alert`` fails ``rule`` on everything but reachability (empty = passes)."""
    reasons = []
    if rule.sources and alert.source not in rule.sources:
        reasons.append(f"source {alert.source} is not one of {rule.sources}")
    if rule.alert_types and alert.alert_type not in rule.alert_types:
        reasons.append(f"type {alert.alert_type!r} is not one of {rule.alert_types}")
    reasons += _class_reasons(rule, alert)
    if rule.min_real_bogus is not None:
        if alert.real_bogus is None:
            reasons.append("no real/bogus score")
        elif alert.real_bogus < rule.min_real_bogus:
            reasons.append(f"real/bogus {alert.real_bogus:.2f} below {rule.min_real_bogus:.2f}")
    if rule.mag_min is not None or rule.mag_max is not None:
        if alert.magnitude is None:
            reasons.append("no magnitude")
        elif rule.mag_min is not None and alert.magnitude < rule.mag_min:
            reasons.append(f"magnitude {alert.magnitude:.2f} brighter than {rule.mag_min}")
        elif rule.mag_max is not None and alert.magnitude > rule.mag_max:
            reasons.append(f"magnitude {alert.magnitude:.2f} fainter than {rule.mag_max}")
    if rule.max_error_radius_deg is not None and alert.error_radius_deg > rule.max_error_radius_deg:
        reasons.append(f"error radius {alert.error_radius_deg:.4g} deg larger than {rule.max_error_radius_deg} deg")
    if rule.dec_min is not None and alert.dec_deg < rule.dec_min:
        reasons.append(f"dec {alert.dec_deg:.2f} south of {rule.dec_min}")
    if rule.dec_max is not None and alert.dec_deg > rule.dec_max:
        reasons.append(f"dec {alert.dec_deg:.2f} north of {rule.dec_max}")
    if rule.min_abs_galactic_latitude is not None and abs(galactic_b) < rule.min_abs_galactic_latitude:
        reasons.append(f"|b| {abs(galactic_b):.1f} deg below {rule.min_abs_galactic_latitude}")
    return reasons


def sites_reaching(alerts: Sequence[ParsedAlert], reach: Reach, now: dt.datetime, hours: float) -> np.ndarray:
    """How many of the sites can watch each alert for `MIN_WINDOW_S` within ``hours`` of ``now``.

    The scheduler's limits (:func:`datas_pipeline.sky.windows.constraint_margin`: altitude and horizon,
    hour angle, twilight, Moon, availability) sampled every `GRID_STEP_S`; window edges are not
    refined, which a yes/no at ten-minute scale does not need.
    """
    if not alerts or not reach.observatories:
        return np.zeros(len(alerts), dtype=int)
    step = min(GRID_STEP_S, hours * 3600.0 / 12)
    grid = now.timestamp() + np.arange(0.0, hours * 3600.0 + step / 2, step)
    ra = np.array([a.ra_deg for a in alerts])
    dec = np.array([a.dec_deg for a in alerts])
    sites = reach.observatories
    lat = np.array([o.latitude_deg for o in sites])
    lon = np.array([o.longitude_deg for o in sites])
    cube = altaz(ra, dec, lat, lon, grid, pressure_hpa=np.array([o.pressure for o in sites]))
    sun_alt = sun_altaz(lat, lon, grid)[0]
    moon_alt, _, moon_vectors = moon_altaz(lat, lon, grid, np.array([o.elevation_m for o in sites]))
    moon_sep = (moon_separation_deg(ra, dec, moon_vectors, float(np.median(grid)))
                if any(o.min_moon_separation_deg > 0 for o in sites) else None)
    count = np.zeros(len(alerts), dtype=int)
    for j, site in enumerate(sites):
        available = (availability_margin(grid, reach.availability[j]) if reach.availability[j] is not None
                     else None)
        margin = constraint_margin(site, cube.apparent_altitude_deg[:, j], cube.azimuth_deg[:, j],
                                   cube.hour_angle_h[:, j], sun_alt[j], moon_alt[j],
                                   None if moon_sep is None else moon_sep[:, j], available)
        count += (margin >= 0).sum(axis=1) * step >= MIN_WINDOW_S
    return count


def evaluate(rules: Sequence[AlertRule], alerts: Sequence[ParsedAlert], reach: Reach, now: dt.datetime
             ) -> list[Verdict]:
    """Every alert against every rule, in rule order; the first rule that holds is the match."""
    needs_b = any(rule.min_abs_galactic_latitude is not None for rule in rules)
    b = _galactic_latitudes(alerts) if needs_b else np.zeros(len(alerts))
    reasons = [[cheap_reasons(rule, alert, float(b[i])) for rule in rules] for i, alert in enumerate(alerts)]
    # Reachability, batched per horizon, only where everything else holds.
    waiting: dict[float, set[int]] = defaultdict(set)
    for i in range(len(alerts)):
        for j, rule in enumerate(rules):
            if rule.min_sites and not reasons[i][j]:
                waiting[rule.within_hours].add(i)
    counts: dict[tuple[float, int], int] = {}
    for hours, pending in waiting.items():
        indices = sorted(pending)
        for i, n in zip(indices, sites_reaching([alerts[i] for i in indices], reach, now, hours), strict=True):
            counts[hours, i] = int(n)
    verdicts = []
    for i in range(len(alerts)):
        verdict = Verdict()
        for j, rule in enumerate(rules):
            why = reasons[i][j]
            if rule.min_sites and not why:
                n = counts[rule.within_hours, i]
                if n < rule.min_sites:
                    why = [f"observable from {n} of {len(reach.names)} sites within {rule.within_hours:g} h; "
                           f"needs {rule.min_sites}"]
            matched = not why
            if matched and verdict.rule is None:
                verdict.rule = rule
            verdict.report.append({"rule": rule.pk, "name": rule.name, "matched": matched, "reasons": why})
        verdicts.append(verdict)
    return verdicts
