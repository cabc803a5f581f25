"""Data factories shared by the app tests: plain functions with sensible defaults.

Each returns a saved row; pass keyword arguments to override any field.
"""
from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from network.models import Membership, Network, Role
from observations.models import Observation
from sites.models import Site
from sites.services import issue_site_key
from targets.models import Campaign, CampaignTarget, Target

_serial = itertools.count(1)


def make_user(username: str | None = None, **fields):
    username = username or f"user{next(_serial)}"
    # No password: hashing one costs ~0.3 s, and tests log in with force_login.
    return get_user_model().objects.create_user(username=username, password=None, **fields)


def make_network(name: str | None = None, **fields) -> Network:
    n = next(_serial)
    name = name or f"Network {n}"
    fields.setdefault("slug", f"net-{n}")
    return Network.objects.create(name=name, **fields)


def make_member(network: Network, role: str = Role.OBSERVER, user=None, **user_fields):
    user = user or make_user(**user_fields)
    Membership.objects.create(user=user, network=network, role=role)
    return user


def make_site(network: Network, owner=None, **fields) -> Site:
    owner = owner or make_member(network, Role.OBSERVER)
    defaults = dict(name=f"Site {next(_serial)}", latitude=28.76, longitude=-17.88, elevation_m=2300,
                    timezone="Atlantic/Canary", aperture_mm=280, focal_length_mm=2800, pixel_size_um=3.76,
                    filters=["V", "B", "R", "L"])
    defaults.update(fields)
    return Site.objects.create(network=network, owner=owner, **defaults)


def make_site_with_key(network: Network, **fields) -> tuple[Site, str]:
    site = make_site(network, **fields)
    return site, issue_site_key(site, label="test").plaintext


def make_target(network: Network, **fields) -> Target:
    defaults = dict(name=f"Target {next(_serial)}", ra_deg=83.82, dec_deg=-5.39, magnitude=10.0, priority=1.0)
    defaults.update(fields)
    return Target.objects.create(network=network, **defaults)


def make_campaign(network: Network, targets=(), **fields) -> Campaign:
    defaults = dict(name=f"Campaign {next(_serial)}")
    defaults.update(fields)
    campaign = Campaign.objects.create(network=network, **defaults)
    for target in targets:
        CampaignTarget.objects.create(campaign=campaign, target=target)
    return campaign


def make_observation(target: Target, site: Site, **fields) -> Observation:
    defaults = dict(observation_id=uuid.uuid4(), observed_at=timezone.now() - timedelta(hours=1),
                    exposure_sec=60, filter=site.filters[0] if site.filters else "V", airmass=1.2,
                    magnitude=12.0, magnitude_error=0.02, ra_deg=target.ra_deg, dec_deg=target.dec_deg)
    defaults.update(fields)
    return Observation.objects.create(network=target.network, target=target, site=site, **defaults)


class World:
    """Two networks, each with one member per role, a site with a key, targets and a campaign.

    Attribute names: ``a``/``b`` networks; ``a_owner``, ``a_manager``, ``a_observer``,
    ``a_viewer``; ``a_site`` (owned by ``a_observer``) and ``a_key`` (its plaintext key);
    ``a_target``, ``a_campaign``; the same with ``b_``.
    """


def build_world() -> World:
    world = World()
    for prefix in ("a", "b"):
        network = make_network(f"Network {prefix.upper()}", slug=f"net-{prefix}")
        setattr(world, prefix, network)
        for role in (Role.OWNER, Role.MANAGER, Role.OBSERVER, Role.VIEWER):
            setattr(world, f"{prefix}_{role}", make_member(network, role, username=f"{prefix}_{role}"))
        site = make_site(network, owner=getattr(world, f"{prefix}_observer"), name=f"{prefix.upper()} Observatory")
        setattr(world, f"{prefix}_site", site)
        setattr(world, f"{prefix}_key", issue_site_key(site, label="agent").plaintext)
        target = make_target(network, name="Delta Cephei", ra_deg=337.2929, dec_deg=58.4152, magnitude=4.0)
        setattr(world, f"{prefix}_target", target)
        setattr(world, f"{prefix}_campaign", make_campaign(network, [target], name="Cepheids"))
    return world
