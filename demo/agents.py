"""Simulated site agents for the demo (``manage.py run_demo``): which sites, their keys, their configurations.

The demo network's sites get real ``datas-agent`` processes with the simulator backend. To
show observations arriving, agents go to sites where it is night now (robotic ones first);
when too few are dark, to those where darkness comes soonest, and the console says so.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from demo.darkness import SUN_LIMIT_DEG, Darkness, darkness_outlook
from demo.services import NETWORKS
from sites.models import Automation, Site
from sites.services import issue_site_key, revoke_site_key

# Keys issued here carry this label, so the next run revokes exactly these (not a key the
# user copied from load_demo or issued in the admin).
AGENT_KEY_LABEL = "simulated agent (run_demo)"
# A site whose night ends within this many hours is no better than one about to start its night.
MIN_DARK_HOURS = 1.0

# The simulated rig: exposures take at most this long in real time, slews this long, so the
# demo shows a steady stream of observations without burning the CPU; 384 px square frames
# (288 kB) keep a few field stars in view.
SIMULATED_EXPOSURE_S = 4.0
SIMULATED_SLEW_S = 1.0
SIMULATED_FRAME_PX = 384
POLL_INTERVAL_S = 15.0
# The placeholder ranking ignores the time of night, so ask for most of the catalogue and
# let the agent keep what is up.
TARGETS_PER_POLL = 100


@dataclass
class DemoAgent:
    """One simulated agent: its site, the site's darkness outlook, and its files under ``directory``."""

    site: Site
    darkness: Darkness
    directory: Path
    key: str = field(default="", repr=False)

    @property
    def slug(self) -> str:
        return f"{self.site.network.slug}-{slugify(self.site.name)}"

    @property
    def config_path(self) -> Path:
        return self.directory / f"{self.slug}.yaml"

    @property
    def key_path(self) -> Path:
        return self.directory / f"{self.slug}.key"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.slug}.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / self.slug

    def describe(self) -> str:
        """The site's sky in a few words, e.g. 'dark now, 6.2 h of darkness left'."""
        d = self.darkness
        if d.dark_now and d.dark_hours >= MIN_DARK_HOURS:
            return f"dark now, {d.dark_hours:.1f} h of darkness left"
        if d.dark_now:
            return f"dark now, but only {d.dark_hours * 60:.0f} min of darkness left"
        if math.isinf(d.hours_until_dark):
            return "no darkness in the next day and a half: it will stay idle"
        return f"Sun up (altitude {d.sun_altitude_deg:+.0f} deg): idle until dark in {d.hours_until_dark:.1f} h"


def demo_sites() -> QuerySet[Site]:
    """The active sites of the demo networks that ``load_demo`` builds."""
    return (Site.objects.filter(network__slug__in=[slug for slug, _, _ in NETWORKS], network__is_active=True,
                                is_active=True).select_related("network").order_by("pk"))


def _preference(site: Site, darkness: Darkness) -> tuple:
    """Sort key, best first: dark for a while (robotic first, longest night first), then soonest dark."""
    robotic = site.automation == Automation.ROBOTIC
    if darkness.dark_now and darkness.dark_hours >= MIN_DARK_HOURS:
        return (0, not robotic, -darkness.dark_hours, site.pk)
    if darkness.dark_now:
        return (1, -darkness.dark_hours, not robotic, site.pk)
    return (2, darkness.hours_until_dark, not robotic, site.pk)


def choose_demo_sites(sites: Sequence[Site], now: datetime, count: int,
                      sun_limit_deg: float = SUN_LIMIT_DEG) -> list[tuple[Site, Darkness]]:
    """The ``count`` sites where simulated agents will observe most.

    Parameters
    ----------
    sites : sequence of Site
        Candidates (their latitude, longitude, elevation and automation are read).
    now : datetime
        The instant to judge darkness at (UTC).
    count : int
        How many sites to choose (fewer when there are fewer candidates).
    sun_limit_deg : float
        Dark means the Sun below this altitude, degrees (the agents' own limit).

    Returns
    -------
    list of (Site, Darkness)
        Best first: sites dark now with at least `MIN_DARK_HOURS` of night left, robotic
        before others, longest night first; then sites whose night is ending; then the
        rest by how soon darkness comes.
    """
    sites = list(sites)
    if not sites or count <= 0:
        return []
    outlook = darkness_outlook([s.latitude for s in sites], [s.longitude for s in sites],
                               [s.elevation_m for s in sites], now, sun_limit_deg=sun_limit_deg)
    ranked = sorted(zip(sites, outlook, strict=True), key=lambda pair: _preference(*pair))
    return ranked[:count]


@transaction.atomic
def issue_demo_agent_key(site: Site) -> str:
    """A fresh key for the site's simulated agent; earlier simulated-agent keys of the site are revoked."""
    for old in site.keys.filter(label=AGENT_KEY_LABEL, revoked_at__isnull=True):
        revoke_site_key(old)
    return issue_site_key(site, label=AGENT_KEY_LABEL).plaintext


def write_key_file(path: Path, key: str) -> None:
    """Write ``key`` readable by this user only (mode 0600), even when the file existed before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key + "\n")


def agent_config(agent: DemoAgent, server_url: str) -> dict:
    """The agent's YAML configuration (as a mapping): the simulator at the site, talking to ``server_url``."""
    site = agent.site
    hardware = {
        "backend": "simulator",
        "telescope_name": site.name,
        "filters": list(site.filters),
        "devices": {"mount": "Simulated mount", "camera": site.camera_model or "Simulated camera",
                    "filter_wheel": "Simulated wheel"},
        "simulator": {"seed": site.pk, "real_time_s": SIMULATED_EXPOSURE_S, "slew_s": SIMULATED_SLEW_S,
                      "width": SIMULATED_FRAME_PX, "height": SIMULATED_FRAME_PX},
    }
    for key, value in (("focal_length_mm", site.focal_length_mm), ("aperture_mm", site.aperture_mm),
                       ("pixel_size_um", site.pixel_size_um)):
        if value:
            hardware[key] = value
    return {
        "server": {"url": server_url, "site_id": str(site.pk), "api_key_file": agent.key_path.name,
                   "timeout_s": 10},
        "site": {"latitude_deg": site.latitude, "longitude_deg": site.longitude, "elevation_m": site.elevation_m,
                 "horizon": [list(point) for point in site.horizon]},
        "hardware": hardware,
        "safety": {"min_altitude_deg": site.min_altitude_deg, "max_sun_altitude_deg": SUN_LIMIT_DEG},
        "poll_interval_s": POLL_INTERVAL_S,
        "targets_per_poll": TARGETS_PER_POLL,
        "default_exposure_s": 30,
        "data_dir": agent.data_dir.name,
        "log_level": "INFO",
    }


def write_agent_config(agent: DemoAgent, server_url: str) -> Path:
    """Write the agent's configuration file beside its key file; return its path."""
    header = (f"# Simulated agent for {agent.site.name} ({agent.site.network.name}), written by "
              "`manage.py run_demo`;\n# rewritten at every run. Paths are relative to this file.\n")
    agent.directory.mkdir(parents=True, exist_ok=True)
    agent.config_path.write_text(header + yaml.safe_dump(agent_config(agent, server_url), sort_keys=False),
                                 encoding="utf-8")
    return agent.config_path


def prepare_demo_agents(count: int, directory: Path, now: datetime,
                        sites: Sequence[Site] | None = None) -> list[DemoAgent]:
    """Choose the sites, issue their keys and write the key files; configurations come once the port is known.

    Parameters
    ----------
    count : int
        How many agents.
    directory : Path
        Where key files, configurations, logs and agent data go (``var/agents``).
    now : datetime
        The instant to judge darkness at (UTC).
    sites : sequence of Site, optional
        Candidates; the demo networks' active sites by default.
    """
    chosen = choose_demo_sites(demo_sites() if sites is None else sites, now, count)
    agents = []
    for site, darkness in chosen:
        agent = DemoAgent(site=site, darkness=darkness, directory=directory)
        agent.key = issue_demo_agent_key(site)
        write_key_file(agent.key_path, agent.key)
        agents.append(agent)
    return agents


def prune_frames(frames_dir: Path, older_than_s: float, now: float | None = None) -> int:
    """Delete FITS frames written more than ``older_than_s`` seconds ago under ``frames_dir``; return how many.

    Keeps a long-running demo's disk bounded (three agents write about 0.2 MB/s). Only for
    the demo: its agents never upload frames, and an agent asked for a deleted frame keeps
    the record on the server and logs the frame as missing.
    """
    cutoff = (time.time() if now is None else now) - older_than_s
    removed = 0
    for frame in frames_dir.glob("*/*.fits"):
        try:
            if frame.stat().st_mtime < cutoff:
                frame.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
