"""Column arrays of targets and sites, built once per pass from the specs.

The scheduler works on arrays (100,000 targets x 1,000 sites); these tables hold one array
per field, with the campaign terms already resolved for the pass time.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datas_pipeline.sky.filters import pattern_index

from scheduling.specs import POLICY_REDUNDANT, SchedulingError, SiteSpec, TargetSpec


def _column(specs: Sequence[object], attr: str, dtype: type = np.float64, missing: float = np.nan) -> np.ndarray:
    values = (getattr(s, attr) for s in specs)
    if dtype is np.float64:
        return np.fromiter((missing if v is None else v for v in values), dtype=np.float64, count=len(specs))
    return np.fromiter(values, dtype=dtype, count=len(specs))


@dataclass
class TargetTable:
    """Targets as columns (N rows). Missing numbers are NaN.

    ``campaign_boost`` is the product of the boosts of the campaigns running at the pass time
    and ``site_quota`` how many sites may take the target at once (the largest ``sites`` of
    its running ``redundant`` campaigns, else 1). Time-critical windows and recent sites are
    flat arrays keyed by target row.
    """

    specs: Sequence[TargetSpec]
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    priority: np.ndarray
    magnitude: np.ndarray
    cadence_hours: np.ndarray
    last_observed_at: np.ndarray
    min_observations: np.ndarray
    observations_total: np.ndarray
    hours_needed: np.ndarray
    hours_observed: np.ndarray
    size_arcmin: np.ndarray
    active: np.ndarray
    campaign_boost: np.ndarray
    site_quota: np.ndarray
    filter_code: np.ndarray
    filter_patterns: list[tuple[str, ...]]
    time_critical: np.ndarray
    tc_target: np.ndarray
    tc_start: np.ndarray
    tc_end: np.ndarray
    tc_boost: np.ndarray
    recent_target: np.ndarray
    recent_site: list[object]
    recent_share: np.ndarray

    def __len__(self) -> int:
        return self.ra_deg.size

    @classmethod
    def from_specs(cls, specs: Sequence[TargetSpec], now: float) -> TargetTable:
        """Build the columns; campaigns and expiry are resolved at ``now`` (POSIX s)."""
        n = len(specs)
        ids = [s.id for s in specs]
        if len(set(ids)) != n:
            raise SchedulingError("target ids must be unique within one pass")
        boost = np.ones(n)
        quota = np.ones(n, dtype=np.int32)
        tc_target, tc_start, tc_end, tc_boost = [], [], [], []
        recent_target, recent_site, recent_share = [], [], []
        for i, spec in enumerate(specs):
            for campaign in spec.campaigns:
                if campaign.is_running(now):
                    boost[i] *= campaign.priority_boost
                    if campaign.policy == POLICY_REDUNDANT:
                        quota[i] = max(quota[i], campaign.sites)
            for window in spec.time_critical:
                tc_target.append(i)
                tc_start.append(window.start)
                tc_end.append(window.end)
                tc_boost.append(window.priority_boost)
            if spec.recent_sites:
                total = sum(spec.recent_sites.values())
                for site_id, count in spec.recent_sites.items():
                    if total > 0 and count > 0:
                        recent_target.append(i)
                        recent_site.append(site_id)
                        recent_share.append(count / total)
        expires = _column(specs, "expires_at")
        active = _column(specs, "active", bool) & ~(expires <= now)
        codes, patterns = pattern_index(s.filters for s in specs)
        time_critical = np.zeros(n, dtype=bool)
        time_critical[np.asarray(tc_target, dtype=np.int64)] = True
        return cls(
            specs=specs,
            ra_deg=_column(specs, "ra_deg"), dec_deg=_column(specs, "dec_deg"),
            priority=_column(specs, "priority"), magnitude=_column(specs, "magnitude"),
            cadence_hours=_column(specs, "cadence_hours"), last_observed_at=_column(specs, "last_observed_at"),
            min_observations=_column(specs, "min_observations"),
            observations_total=_column(specs, "observations_total"),
            hours_needed=_column(specs, "hours_needed"), hours_observed=_column(specs, "hours_observed"),
            size_arcmin=_column(specs, "size_arcmin"), active=active, campaign_boost=boost, site_quota=quota,
            filter_code=codes, filter_patterns=patterns, time_critical=time_critical,
            tc_target=np.asarray(tc_target, dtype=np.int64), tc_start=np.asarray(tc_start, dtype=np.float64),
            tc_end=np.asarray(tc_end, dtype=np.float64), tc_boost=np.asarray(tc_boost, dtype=np.float64),
            recent_target=np.asarray(recent_target, dtype=np.int64), recent_site=recent_site,
            recent_share=np.asarray(recent_share, dtype=np.float64),
        )


@dataclass
class SiteTable:
    """Sites as columns (M rows)."""

    specs: Sequence[SiteSpec]
    latitude_deg: np.ndarray
    longitude_deg: np.ndarray
    elevation_m: np.ndarray
    limiting_mag: np.ndarray
    fov_arcmin: np.ndarray
    reliability: np.ndarray
    filter_code: np.ndarray
    filter_patterns: list[tuple[str, ...]]
    index_of: dict[object, int]

    def __len__(self) -> int:
        return self.latitude_deg.size

    @classmethod
    def from_specs(cls, specs: Sequence[SiteSpec]) -> SiteTable:
        """Build the columns."""
        index_of = {s.id: i for i, s in enumerate(specs)}
        if len(index_of) != len(specs):
            raise SchedulingError("site ids must be unique within one pass")
        codes, patterns = pattern_index(s.filters for s in specs)
        return cls(
            specs=specs, latitude_deg=_column(specs, "latitude_deg"), longitude_deg=_column(specs, "longitude_deg"),
            elevation_m=_column(specs, "elevation_m"), limiting_mag=_column(specs, "limiting_mag"),
            fov_arcmin=_column(specs, "fov_arcmin"), reliability=_column(specs, "reliability"),
            filter_code=codes, filter_patterns=patterns, index_of=index_of,
        )
