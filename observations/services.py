"""Storing uploaded observations: idempotent on the client's observation_id."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from network.models import MANAGING_ROLES
from network.tenancy import networks_for, observing_networks
from observations.models import Observation, PositionSource
from sites.models import Site, SiteKey
from targets.coverage import refresh_coverage
from targets.models import Target


@dataclass(frozen=True)
class Uploader:
    """Who is uploading: a site agent (``site_key``) or a person (``user``)."""

    site_key: SiteKey | None = None
    user: AbstractBaseUser | None = None

    def sites(self) -> QuerySet[Site]:
        """Sites this uploader may submit for: the key's site, or the person's own sites and
        every site of the networks they manage."""
        if self.site_key is not None:
            return Site.objects.filter(pk=self.site_key.site_id, is_active=True)
        managed = networks_for(self.user, MANAGING_ROLES)
        return Site.objects.filter(is_active=True).filter(
            Q(network__in=managed) | Q(owner=self.user, network__in=observing_networks(self.user)))

    @property
    def default_site_id(self) -> int | None:
        return self.site_key.site_id if self.site_key is not None else None


@dataclass(frozen=True)
class StoredObservation:
    observation: Observation
    created: bool


def resolve_references(attrs: dict, uploader: Uploader) -> tuple[dict, dict[str, list[str]]]:
    """Turn ``site_id``/``target_id`` into rows the uploader may use and check the filter.

    Returns the completed attributes and per-field error messages (empty when valid). Ids of
    other networks read as unknown, so nothing about them leaks.
    """
    errors: dict[str, list[str]] = {}
    site_id = attrs.get("site_id", uploader.default_site_id)
    if uploader.site_key is not None and site_id != uploader.site_key.site_id:
        errors["site_id"] = [f"this key belongs to site {uploader.site_key.site_id}; it cannot submit for another"]
        return attrs, errors
    if site_id is None:
        return attrs, {"site_id": ["this field is required when uploading with a personal login"]}
    site = uploader.sites().select_related("network").filter(pk=site_id).first()
    if site is None:
        return attrs, {"site_id": [f"unknown site {site_id}, or you may not submit for it"]}
    target = Target.objects.filter(pk=attrs["target_id"], network_id=site.network_id).first()
    if target is None:
        errors["target_id"] = [f"no target {attrs['target_id']} in network {site.network.slug!r}"]
    if site.filters and attrs["filter"] not in site.filters:
        errors["filter"] = [f"{attrs['filter']!r} is not one of this site's filters: {', '.join(site.filters)}"]
    return attrs | {"site": site, "target": target}, errors


def existing_observations(observation_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Observation]:
    return {o.observation_id: o for o in
            Observation.objects.filter(observation_id__in=list(observation_ids)).select_related("network", "target")}


def _new_observation(attrs: dict, uploader: Uploader) -> Observation:
    site: Site = attrs["site"]
    target: Target = attrs["target"]
    photometry = attrs.get("photometry") or {}
    astrometry = attrs.get("astrometry")
    if astrometry:
        position = dict(ra_deg=astrometry["ra_deg"], dec_deg=astrometry["dec_deg"],
                        astrometry_error_arcsec=astrometry.get("error_arcsec"),
                        position_source=PositionSource.ASTROMETRY)
    else:
        position = dict(ra_deg=target.ra_deg, dec_deg=target.dec_deg, position_source=PositionSource.TARGET)
    return Observation(
        observation_id=attrs["observation_id"], network_id=site.network_id, target=target, site=site,
        observed_at=attrs["observed_at"], exposure_sec=attrs["exposure_sec"], filter=attrs["filter"],
        airmass=attrs.get("airmass"), seeing_arcsec=attrs.get("seeing_arcsec"),
        magnitude=photometry.get("magnitude"), magnitude_error=photometry.get("error"),
        comparison_stars=photometry.get("comparison_stars", []), photometry_method=photometry.get("method", ""),
        quality_flags=attrs.get("quality_flags", []), fits_header=attrs.get("fits_header", {}),
        image_ref=attrs.get("image_ref", ""), submitted_by=uploader.user, submitted_with_key=uploader.site_key,
        **position,
    )


def store_observations(validated: list[dict], uploader: Uploader) -> list[StoredObservation]:
    """Store validated observations in one transaction; repeats return the stored row.

    A repeat is an ``observation_id`` already stored (an earlier request) or seen earlier in
    the same batch. Coverage counters of the touched targets are refreshed afterwards.
    """
    results: list[StoredObservation] = []
    seen: dict[uuid.UUID, Observation] = {}
    with transaction.atomic():
        for attrs in validated:
            observation_id = attrs["observation_id"]
            if observation_id in seen:
                results.append(StoredObservation(seen[observation_id], created=False))
                continue
            observation = _new_observation(attrs, uploader)
            try:
                with transaction.atomic():
                    observation.save()
                created = True
            except IntegrityError:  # a concurrent retry stored it first
                observation = Observation.objects.get(observation_id=observation_id)
                created = False
            seen[observation_id] = observation
            results.append(StoredObservation(observation, created))
    touched = {r.observation.target_id for r in results if r.created}
    if touched:
        refresh_coverage(touched)
    return results


# Validates one uploaded item: (validated attributes, {}) or (None, {field: [messages]}).
ItemValidator = Callable[[dict], tuple[dict | None, dict]]


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch: every item's record (when all were valid) and every item's errors."""

    results: list[StoredObservation]
    errors: list[dict]

    @property
    def ok(self) -> bool:
        return not any(self.errors)

    @property
    def created(self) -> int:
        return sum(1 for r in self.results if r.created)


def submit_observations(items: list[dict], uploader: Uploader, validate: ItemValidator) -> BatchOutcome:
    """Store a batch of uploads all or nothing, idempotent on ``observation_id``.

    An item whose ``observation_id`` is already stored for one of the uploader's sites comes
    back as that record (``created=False``: a retry stores nothing new); one stored by another
    site is an error. The rest are checked by ``validate`` and stored in one transaction, only
    when no item of the batch has an error.
    """
    ids: dict[int, uuid.UUID] = {}
    for index, item in enumerate(items):
        with contextlib.suppress(ValueError):
            ids[index] = uuid.UUID(str(item.get("observation_id")))
    found = existing_observations(ids.values())
    allowed_sites = set(uploader.sites().values_list("pk", flat=True))
    stored: list[StoredObservation | None] = []
    errors: list[dict] = []
    validated: list[dict] = []
    for index, item in enumerate(items):
        existing = found.get(ids.get(index))
        if existing is not None:
            mine = existing.site_id in allowed_sites
            stored.append(StoredObservation(existing, created=False) if mine else None)
            errors.append({} if mine else {"observation_id": ["this observation_id is already used by another site"]})
            continue
        attrs, problems = validate(item)
        stored.append(None)
        errors.append(problems)
        if attrs is not None and not problems:
            validated.append(attrs)
    if any(errors):
        return BatchOutcome([], errors)
    new = iter(store_observations(validated, uploader))
    return BatchOutcome([s if s is not None else next(new) for s in stored], errors)
