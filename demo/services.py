"""The demo deployment that ``manage.py load_demo`` builds (idempotent: safe to run again).

Two networks (a variable-star club and an exoplanet-transit network), thirteen real observing
sites around the world, the bundled catalogue of real bright targets in each network,
campaigns, and a few weeks of synthetic photometry with the stars' real periods.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from network.models import Membership, Network, Role
from observations.models import Observation
from sites.models import Site
from sites.services import issue_site_key
from targets.catalogue import read_catalogue
from targets.coverage import refresh_coverage
from targets.models import Campaign, CampaignTarget, Target
from targets.services import set_aliases

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-datas"
DEMO_NAMESPACE = uuid.UUID("6f1d2a3e-6d1b-4c36-9b7e-3c0ad7a1d5e2")

NETWORKS = [
    ("vsnet", "Variable Star Network", "A club network monitoring pulsating, eruptive and eclipsing variables."),
    ("exonet", "Exoplanet Transit Network", "Transit timing of hot Jupiters from small telescopes worldwide."),
]

# (network, name, lat, lon, elevation m, tz, aperture mm, focal mm, pixel um, camera, filters, automation, online)
SITES = [
    ("vsnet", "La Palma 0.4m", 28.7606, -17.8814, 2326, "Atlantic/Canary", 400, 2800, 3.76, "ZWO ASI2600MM Pro",
     ["B", "V", "R", "I"], "robotic", True),
    ("vsnet", "Siding Spring 0.5m", -31.2733, 149.0644, 1165, "Australia/Sydney", 508, 2281, 9.0, "FLI PL11002",
     ["B", "V", "Rc", "Ic"], "robotic", True),
    ("vsnet", "Mayhill New Mexico", 32.9031, -105.5292, 2225, "America/Denver", 317, 2541, 5.4, "SBIG STL-1001E",
     ["V", "R", "L"], "robotic", False),
    ("vsnet", "Hakos Namibia", -23.2361, 16.3617, 1843, "Africa/Windhoek", 300, 1200, 3.76, "QHY600M",
     ["B", "V", "R"], "semi_auto", True),
    ("vsnet", "Sutherland Karoo", -32.3794, 20.8107, 1798, "Africa/Johannesburg", 254, 1626, 4.63, "ASI1600MM",
     ["V", "CV"], "manual", False),
    ("vsnet", "Mount John Tekapo", -43.9856, 170.4650, 1029, "Pacific/Auckland", 356, 2845, 4.54, "SX Trius 694",
     ["B", "V", "R"], "semi_auto", True),
    ("vsnet", "Ondrejov Backyard", 49.9100, 14.7800, 528, "Europe/Prague", 203, 1000, 3.76, "ASI2600MM",
     ["V", "R", "L"], "manual", False),
    ("exonet", "Nerpio Spain", 38.1656, -2.3267, 1650, "Europe/Madrid", 432, 2939, 9.0, "FLI ProLine 16803",
     ["V", "R", "I", "Clear"], "robotic", True),
    ("exonet", "El Sauce Chile", -30.4725, -70.7631, 1600, "America/Santiago", 610, 3962, 9.0, "FLI PL09000",
     ["V", "R", "I", "z"], "robotic", True),
    ("exonet", "Oukaimeden Morocco", 31.2061, -7.8664, 2700, "Africa/Casablanca", 500, 4000, 3.76, "QHY268M",
     ["R", "I", "Clear"], "robotic", False),
    ("exonet", "Devasthal India", 29.3600, 79.6840, 2450, "Asia/Kolkata", 356, 2541, 3.76, "ASI2600MM",
     ["V", "R", "I"], "semi_auto", True),
    ("exonet", "Xinglong China", 40.3956, 117.5750, 900, "Asia/Shanghai", 300, 2400, 5.86, "ASI174MM",
     ["R", "I"], "manual", False),
    ("exonet", "Kitt Peak Arizona", 31.9583, -111.5967, 2096, "America/Phoenix", 508, 3454, 6.0, "Apogee Alta U16",
     ["B", "V", "R", "I"], "robotic", True),
]

# Priorities per target type in each network: each network cares most about its own science.
PRIORITY = {
    "vsnet": {"variable": 3.0, "star": 0.5, "deep_sky": 0.3, "exoplanet": 0.5},
    "exonet": {"exoplanet": 3.0, "star": 0.5, "deep_sky": 0.3, "variable": 0.8},
}

CAMPAIGNS = [
    ("vsnet", "Cepheid monitoring", "Nightly V-band points on bright classical Cepheids.", "diverse", 3, 1.0,
     ["Delta Cephei", "Eta Aquilae", "Zeta Geminorum", "X Cygni", "SU Cassiopeiae", "l Carinae", "Beta Doradus"]),
    ("vsnet", "Mira season", "Weekly visual-equivalent photometry of Mira variables.", "diverse", 2, 0.5,
     ["Mira", "Chi Cygni", "R Leonis", "R Hydrae", "R Cygni", "R Cassiopeiae", "T Cephei", "U Orionis"]),
    ("vsnet", "Eruptive patrol", "Catch outbursts of dwarf and recurrent novae from two sites at once.", "redundant",
     2, 2.0, ["SS Cygni", "U Geminorum", "Z Camelopardalis", "T Coronae Borealis", "RS Ophiuchi"]),
    ("vsnet", "Algol minima", "Eclipse timings of Algol-type binaries.", "diverse", 2, 1.0,
     ["Algol", "Lambda Tauri", "Beta Lyrae", "W Ursae Majoris"]),
    ("exonet", "Hot Jupiter transit timing", "Mid-transit times to refine ephemerides.", "diverse", 3, 1.5,
     ["WASP-12", "WASP-33", "WASP-43", "HAT-P-7", "TrES-2", "XO-1", "HAT-P-32", "Qatar-1", "KELT-9"]),
    ("exonet", "Bright hosts, two sites at once", "Simultaneous photometry to separate weather from signal.",
     "redundant", 2, 1.0, ["HD 209458", "HD 189733", "HD 149026", "55 Cancri", "KELT-11"]),
]


@dataclass
class DemoReport:
    created: dict[str, int] = field(default_factory=dict)
    new_keys: list[tuple[str, str]] = field(default_factory=list)

    def count(self, what: str, created: bool) -> None:
        if created:
            self.created[what] = self.created.get(what, 0) + 1


def _user(username: str, report: DemoReport, **fields):
    user, created = get_user_model().objects.get_or_create(username=username, defaults=fields)
    report.count("users", created)
    return user


@transaction.atomic
def load_demo(progress: Callable[[str], None] = lambda message: None) -> DemoReport:
    """Create or refresh the demo data; return what was new (and any new site keys)."""
    report = DemoReport()
    demo = _user(DEMO_USERNAME, report, is_staff=True, first_name="Demo", last_name="Manager")
    if not demo.password:  # set on first load only; a changed demo password is kept
        demo.set_password(DEMO_PASSWORD)
        demo.save()
    networks = {}
    for slug, name, description in NETWORKS:
        network, created = Network.objects.update_or_create(slug=slug, defaults={"name": name,
                                                                                 "description": description})
        report.count("networks", created)
        Membership.objects.update_or_create(user=demo, network=network, defaults={"role": Role.OWNER})
        networks[slug] = network
    progress("networks ready")

    sites = _load_sites(networks, report)
    progress(f"{len(sites)} sites ready")
    targets = _load_targets(networks, report)
    progress(f"{sum(len(t) for t in targets.values())} targets ready")
    _load_campaigns(networks, targets, report)
    _load_observations(networks, sites, targets, report)
    refresh_coverage(Target.objects.filter(network__in=networks.values()).values_list("pk", flat=True))
    progress("observations and coverage ready")
    return report


def _load_sites(networks, report) -> dict[str, Site]:
    sites = {}
    for (slug, name, lat, lon, elevation, tz, aperture, focal, pixel, camera, filters, automation,
         _online) in SITES:
        network = networks[slug]
        owner = _user("obs_" + name.split()[0].lower(), report, first_name=name.split()[0])
        if not owner.password:  # observers log in with the demo password too (listed on the login page)
            owner.set_password(DEMO_PASSWORD)
            owner.save(update_fields=["password"])
        Membership.objects.get_or_create(user=owner, network=network, defaults={"role": Role.OBSERVER})
        site, created = Site.objects.update_or_create(network=network, name=name, defaults=dict(
            owner=owner, latitude=lat, longitude=lon, elevation_m=elevation, timezone=tz, aperture_mm=aperture,
            focal_length_mm=focal, pixel_size_um=pixel, camera_model=camera, filters=filters,
            automation=automation, mount_type="german_equatorial" if aperture < 400 else "fork_equatorial",
            fov_arcmin=round(math.degrees(pixel * 1e-3 * 6000 / focal) * 60, 1),
            limiting_mag=round(12 + 5 * math.log10(aperture / 100), 1),
            horizon=[[0, 15], [90, 20], [180, 15], [270, 20]],
            ha_limit_east_h=-5.5, ha_limit_west_h=5.5,
            reliability=0.9 if automation == "robotic" else 0.6,
            # No status, weather or heartbeat: only a running agent (run_demo) reports those.
        ))
        report.count("sites", created)
        if not site.keys.filter(revoked_at__isnull=True).exists():
            report.new_keys.append((name, issue_site_key(site, label="demo agent").plaintext))
        sites[name] = site
    return sites


def _load_targets(networks, report) -> dict[str, dict[str, Target]]:
    catalogue = read_catalogue()
    targets: dict[str, dict[str, Target]] = {}
    for slug, network in networks.items():
        targets[slug] = {}
        for entry in catalogue:
            variable = entry.target_type in ("variable", "exoplanet") and entry.period_days
            target, created = Target.objects.update_or_create(
                network=network, name=entry.name, defaults=dict(
                    ra_deg=entry.ra_deg, dec_deg=entry.dec_deg, target_type=entry.target_type,
                    magnitude=entry.magnitude, priority=PRIORITY[slug][entry.target_type],
                    cadence_hours=24.0 if variable else None,
                    min_observations=3 if entry.target_type in ("variable", "exoplanet") else 1,
                    required_filters=["V"] if entry.target_type == "variable" else [],
                    exposure_sec=_exposure_for(entry.magnitude),
                    metadata={"notes": entry.notes, **({"period_days": entry.period_days} if entry.period_days
                                                       else {})},
                ))
            set_aliases(target, entry.aliases)
            report.count("targets", created)
            targets[slug][entry.name] = target
    return targets


def _exposure_for(magnitude: float | None) -> float:
    """A sensible exposure for a small telescope: short for bright stars, long for faint."""
    if magnitude is None:
        return 60.0
    return float(min(300.0, max(1.0, round(2 ** (magnitude - 4), 1))))


def _load_campaigns(networks, targets, report) -> None:
    now = timezone.now()
    for slug, name, description, policy, sites_wanted, boost, members in CAMPAIGNS:
        campaign, created = Campaign.objects.update_or_create(network=networks[slug], name=name, defaults=dict(
            description=description, coverage_policy=policy, coverage_sites=sites_wanted, priority_boost=boost,
            starts_at=now - timedelta(days=30), ends_at=now + timedelta(days=60), is_active=True))
        report.count("campaigns", created)
        for target_name in members:
            CampaignTarget.objects.get_or_create(campaign=campaign, target=targets[slug][target_name])


def _cepheid_mag(phase: np.ndarray, mean: float, amplitude: float) -> np.ndarray:
    """A Cepheid-like light curve: fast rise, slow decline (a skewed sinusoid)."""
    return mean - amplitude / 2 * np.sin(2 * np.pi * (phase + 0.25 * np.sin(2 * np.pi * phase)))


def _algol_mag(phase: np.ndarray) -> np.ndarray:
    """Algol: 2.1 mag out of eclipse, 1.3 mag deep primary eclipse lasting ~10 h of 2.87 d."""
    distance = np.minimum(phase, 1 - phase)
    return 2.1 + 1.3 * np.clip(1 - distance / 0.07, 0, 1) ** 1.5


def _transit_mag(phase: np.ndarray, base: float, depth: float, half_width: float) -> np.ndarray:
    distance = np.minimum(phase, 1 - phase)
    return base + depth * (distance < half_width)


LIGHT_CURVES = [
    ("vsnet", "Delta Cephei", "V", lambda p: _cepheid_mag(p, 3.95, 0.88)),
    ("vsnet", "Eta Aquilae", "V", lambda p: _cepheid_mag(p, 3.90, 0.80)),
    ("vsnet", "Algol", "V", _algol_mag),
    ("vsnet", "RR Lyrae", "V", lambda p: _cepheid_mag(p, 7.75, 0.90)),
    ("exonet", "HD 189733", "V", lambda p: _transit_mag(p, 7.67, 0.028, 0.0168)),
    ("exonet", "WASP-12", "R", lambda p: _transit_mag(p, 11.4, 0.014, 0.056)),
]


def _load_observations(networks, sites, targets, report) -> None:
    """A few weeks of photometry with real periods, reproducible ids (so reruns add nothing)."""
    rng = np.random.default_rng(2026)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for slug, target_name, filter_name, model in LIGHT_CURVES:
        target = targets[slug][target_name]
        period = target.metadata["period_days"]
        observers = [s for s in sites.values() if s.network_id == networks[slug].pk and filter_name in s.filters]
        times = np.sort(rng.uniform(0, 21, 60))
        for index, days_ago in enumerate(times):
            observed_at = now - timedelta(days=float(days_ago))
            phase = np.array([((21 - days_ago) / period) % 1.0])
            error = 0.004 if target.magnitude < 8 else 0.012
            magnitude = float(model(phase)[0] + rng.normal(0, error))
            site = observers[index % len(observers)]
            _, created = Observation.objects.get_or_create(
                observation_id=uuid.uuid5(DEMO_NAMESPACE, f"{slug}/{target_name}/{index}"),
                defaults=dict(network=networks[slug], target=target, site=site, observed_at=observed_at,
                              exposure_sec=target.exposure_sec or 30, filter=filter_name,
                              airmass=round(1.0 + rng.uniform(0, 0.8), 3), seeing_arcsec=round(rng.uniform(1.2, 3.5), 2),
                              magnitude=round(magnitude, 4), magnitude_error=error, photometry_method="ensemble",
                              ra_deg=target.ra_deg, dec_deg=target.dec_deg))
            report.count("observations", created)
