"""The network's lights narrowed by cone, target or date, and clustered into pointings.

The query goes through the project's one cone search (Q3C on PostgreSQL); the clustering
is :func:`datas_pipeline.archive.cluster.cluster_pointings` per site (frames of two telescopes
are never one panel). A cluster is named after the nearest target of the network within
its field when there is one, else after its centre: never after OBJECT.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from datas_pipeline.archive.cluster import cluster_pointings
from django.db.models import QuerySet

from network.models import Network
from observations.frame_selectors import frames_in_cone
from observations.frames import Frame, ImageType
from targets.models import Target
from targets.selectors import find_target_by_name
from targets.sky import angular_separation_deg, cone_search

DEFAULT_FOV_DEG = 1.0
TARGET_RADIUS_DEG = 1.0


class ArchiveQueryError(ValueError):
    """A query that cannot be answered (unknown target, bad cone), with what to fix."""


@dataclass
class PointingCluster:
    """Lights of one pointing of one site: centre (degrees), field (degrees), rotation."""

    name: str
    ra_deg: float
    dec_deg: float
    fov_deg: float
    rotation_deg: float | None
    site_id: int
    frames: list[Frame]

    @property
    def filters(self) -> list[str]:
        return sorted({f.filter or "none" for f in self.frames})


def archive_lights(network: Network, *, near: tuple[float, float, float] | None = None, target: str | None = None,
                   since: dt.datetime | None = None, until: dt.datetime | None = None,
                   site_id: int | None = None) -> QuerySet[Frame]:
    """The network's lights with a sky position, narrowed by a cone (ra, dec, radius in
    degrees), a target's name (a cone of :data:`TARGET_RADIUS_DEG` around it) and dates."""
    frames = (Frame.objects.filter(network=network, image_type=ImageType.LIGHT, ra_deg__isnull=False)
              .select_related("archive_file", "site"))
    if site_id is not None:
        frames = frames.filter(site_id=site_id)
    if since is not None:
        frames = frames.filter(observed_at__gte=since)
    if until is not None:
        frames = frames.filter(observed_at__lt=until)
    if target:
        found = find_target_by_name(network, target)
        if found is None:
            raise ArchiveQueryError(f"no target {target!r} in network {network.slug!r}")
        frames = frames_in_cone(frames, found.ra_deg, found.dec_deg, TARGET_RADIUS_DEG)
    if near is not None:
        frames = frames_in_cone(frames, *near)
    return frames


def field_of_view_deg(frame: Frame) -> float:
    """The frame's shorter side on the sky, degrees (from its WCS scale, else its optics)."""
    scale = frame.pixel_scale_arcsec
    if not scale:
        from observations.frame_astrometry import hint_scale_arcsec

        scale = hint_scale_arcsec(frame)
    if not scale or not frame.width or not frame.height:
        return DEFAULT_FOV_DEG
    return min(frame.width, frame.height) * scale / 3600.0


def _name(network: Network, ra: float, dec: float, fov: float) -> str:
    nearby = cone_search(Target.objects.filter(network=network), ra, dec, max(fov, 1e-3)).first()
    position = f"RA{ra:07.3f}{dec:+07.3f}"
    return f"{nearby.name} {position}" if nearby is not None else position


def cluster_lights(network: Network, frames) -> list[PointingCluster]:
    """Cluster ``frames`` (lights with a sky position) into pointings, per site."""
    frames = list(frames)
    clusters: list[PointingCluster] = []
    for site_id in sorted({f.site_id for f in frames}):
        mine = [f for f in frames if f.site_id == site_id]
        rotation = [np.nan if f.rotation_deg is None else f.rotation_deg for f in mine]
        found = cluster_pointings([f.ra_deg for f in mine], [f.dec_deg for f in mine],
                                  [field_of_view_deg(f) for f in mine], rotation)
        for c in found:
            members = sorted((mine[i] for i in c.members), key=lambda f: (f.observed_at, f.pk))
            clusters.append(PointingCluster(_name(network, c.ra_deg, c.dec_deg, c.fov_deg / 2), c.ra_deg,
                                            c.dec_deg, c.fov_deg, c.rotation_deg, site_id, members))
    return clusters


def separation_deg(cluster: PointingCluster, ra: float, dec: float) -> float:
    return float(angular_separation_deg(cluster.ra_deg, cluster.dec_deg, ra, dec))
