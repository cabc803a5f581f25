"""The score of a target at a site: a product of named terms, each in its own function.

score = priority x campaign x cadence x coverage x urgency x altitude x magnitude x filters
        x fov x reliability x recent_site

The first five belong to the target (the seed's priority, campaign boosts and cadence deficit,
plus what coverage is still missing and how soon a time-critical window closes); the rest to
the (target, site) pair: the seed's altitude bonus and recent-site penalty, plus brightness
against the site's limiting magnitude, the filters it has, whether its field holds the target,
and how reliable it has been. A term of 0 makes the pair ineligible. Every entry of a ranked
list carries its terms, so a human can see why it was chosen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduling.tables import TargetTable

TARGET_TERMS = ("priority", "campaign", "cadence", "coverage")
PAIR_TERMS = ("urgency", "altitude", "magnitude", "filters", "fov", "reliability", "recent_site")


@dataclass(frozen=True)
class Weights:
    """Tunable shapes of the terms (all dimensionless unless named).

    Attributes
    ----------
    cadence_cap : float
        Largest cadence deficit (elapsed / cadence); a never-observed target gets it.
    coverage_weight : float
        Coverage term = 1 + weight x fraction of the goal still missing.
    urgency_scale : float
        Urgency = boost x (1 + scale / (1 + hours until the window closes)).
    altitude_exponent : float
        Altitude term = sin(altitude) ** exponent (1 / plane-parallel airmass).
    magnitude_headroom, magnitude_overshoot : float
        Full score for targets ``headroom`` mag brighter than the site's limit, falling
        linearly to 0 at ``overshoot`` mag fainter than it.
    min_fov_fraction : float
        A field smaller than this fraction of the target's size makes the pair ineligible.
    reliability_exponent : float
        Reliability term = reliability ** exponent.
    recent_site_penalty : float
        Recent-site term = 1 - penalty x (share of the target's recent observations made
        at this site): spreads long-term targets over the network.
    """

    cadence_cap: float = 3.0
    coverage_weight: float = 1.0
    urgency_scale: float = 3.0
    altitude_exponent: float = 1.0
    magnitude_headroom: float = 1.0
    magnitude_overshoot: float = 0.5
    min_fov_fraction: float = 0.5
    reliability_exponent: float = 1.0
    recent_site_penalty: float = 0.5


def cadence_term(cadence_hours: np.ndarray, last_observed_at: np.ndarray, now: float, weights: Weights
                 ) -> np.ndarray:
    """Cadence deficit: hours since the last observation over the wanted cadence, capped.

    1 for targets without a cadence; the cap for those never observed.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        deficit = (now - last_observed_at) / 3600.0 / cadence_hours
    deficit = np.where(np.isnan(last_observed_at), weights.cadence_cap, np.clip(deficit, 0.0, weights.cadence_cap))
    return np.where(np.isnan(cadence_hours), 1.0, deficit)


def coverage_term(table: TargetTable, weights: Weights) -> np.ndarray:
    """1 + weight x the larger missing fraction of the hours and observation goals.

    0 for a target whose goals are all met and which has no cadence to keep: it is done.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        missing_hours = np.where(table.hours_needed > 0,
                                 np.clip(1 - table.hours_observed / table.hours_needed, 0, 1), np.nan)
        missing_obs = np.where(table.min_observations > 0,
                               np.clip(1 - table.observations_total / table.min_observations, 0, 1), np.nan)
    has_goal = ~np.isnan(missing_hours) | ~np.isnan(missing_obs)
    missing = np.fmax(np.nan_to_num(missing_hours, nan=-1.0), np.nan_to_num(missing_obs, nan=-1.0))
    term = np.where(has_goal, 1.0 + weights.coverage_weight * np.maximum(missing, 0.0), 1.0)
    done = has_goal & (missing <= 0) & np.isnan(table.cadence_hours)
    return np.where(done, 0.0, term)


def target_terms(table: TargetTable, now: float, weights: Weights) -> dict[str, np.ndarray]:
    """The per-target terms (N,) at the pass time; inactive or expired targets get priority 0."""
    return {
        "priority": np.where(table.active, table.priority, 0.0),
        "campaign": table.campaign_boost,
        "cadence": cadence_term(table.cadence_hours, table.last_observed_at, now, weights),
        "coverage": coverage_term(table, weights),
    }


def urgency_term(boost: np.ndarray, hours_to_close: np.ndarray, weights: Weights) -> np.ndarray:
    """Time-critical urgency: the boost, raised more the sooner the window closes."""
    return boost * (1.0 + weights.urgency_scale / (1.0 + np.maximum(hours_to_close, 0.0)))


def altitude_term(sin_altitude: np.ndarray, weights: Weights) -> np.ndarray:
    """sin(altitude) ** exponent: 1 at the zenith, 0.5 at 30 deg for the default exponent."""
    s = np.maximum(sin_altitude, 0.0)
    return s if weights.altitude_exponent == 1.0 else s ** weights.altitude_exponent


def magnitude_term(limiting_mag: np.ndarray, magnitude: np.ndarray, weights: Weights) -> np.ndarray:
    """How comfortably the site reaches the target: 1 with headroom, 0 beyond the limit; 1 if unknown."""
    span = weights.magnitude_headroom + weights.magnitude_overshoot
    term = np.clip((limiting_mag - magnitude + weights.magnitude_overshoot) / span, 0.0, 1.0)
    return np.where(np.isnan(term), 1.0, term)


def fov_term(fov_arcmin: np.ndarray, size_arcmin: np.ndarray, weights: Weights) -> np.ndarray:
    """Fraction of the target the field holds (1 for point sources or unknown fields)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.clip(fov_arcmin / size_arcmin, 0.0, 1.0)
    fraction = np.where(np.isnan(fraction), 1.0, fraction)
    return np.where(fraction < weights.min_fov_fraction, 0.0, fraction)


def reliability_term(reliability: np.ndarray, weights: Weights) -> np.ndarray:
    """reliability ** exponent (sites that lose nights to faults score lower)."""
    r = np.nan_to_num(reliability, nan=1.0)
    return r if weights.reliability_exponent == 1.0 else r ** weights.reliability_exponent


def recent_site_term(share: np.ndarray, weights: Weights) -> np.ndarray:
    """1 - penalty x share of the target's recent observations made at this site."""
    return 1.0 - weights.recent_site_penalty * np.clip(share, 0.0, 1.0)
