"""Storing uploaded observations: idempotent on the client's observation_id."""
from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal

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


# Observation ids derived from a record's identity live in their own UUID-5 namespace.
DERIVED_ID_NAMESPACE = uuid.UUID("6f1c9a52-43d7-5c8e-9b0a-d47a5e0c2b11")


def derived_observation_id(site_id: int, target_id: int, observed_at: datetime.datetime, filter_name: str) -> uuid.UUID:
    """The observation_id of a record sent without one: the same record always gets the same id.

    ``observed_at`` counts to the microsecond in UTC, so a retry of the same record (same
    site, target, time and filter) is recognised and stores nothing new.
    """
    when = observed_at.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    return uuid.uuid5(DERIVED_ID_NAMESPACE, f"{site_id}|{target_id}|{when}|{filter_name}")


class BatchReferences:
    """The sites and targets a batch names, read once (two queries) for all its items."""

    def __init__(self, uploader: Uploader, items: list[dict]) -> None:
        self.uploader = uploader
        self.sites = {s.pk: s for s in uploader.sites().select_related("network")}
        wanted = set()
        for item in items:
            with contextlib.suppress(TypeError, ValueError):
                wanted.add(int(item.get("target_id")))
        self.targets = {t.pk: t for t in Target.objects.filter(
            pk__in=wanted, network_id__in={s.network_id for s in self.sites.values()}).only(
            "id", "network_id", "name", "ra_deg", "dec_deg")} if wanted else {}

    def resolve(self, attrs: dict) -> tuple[dict, dict[str, list[str]]]:
        """Turn ``site_id``/``target_id`` into rows the uploader may use and check the filter.

        Returns the completed attributes (with ``observation_id`` derived when none was sent)
        and per-field error messages (empty when valid). Ids of other networks read as
        unknown, so nothing about them leaks.
        """
        uploader = self.uploader
        site_id = attrs.get("site_id", uploader.default_site_id)
        if uploader.site_key is not None and site_id != uploader.site_key.site_id:
            return attrs, {"site_id": [f"this key belongs to site {uploader.site_key.site_id}; "
                                       "it cannot submit for another"]}
        if site_id is None:
            return attrs, {"site_id": ["this field is required when uploading with a personal login"]}
        site = self.sites.get(site_id)
        if site is None:
            return attrs, {"site_id": [f"unknown site {site_id}, or you may not submit for it"]}
        errors: dict[str, list[str]] = {}
        target = self.targets.get(attrs["target_id"])
        if target is None or target.network_id != site.network_id:
            target = None
            errors["target_id"] = [f"no target {attrs['target_id']} in network {site.network.slug!r}"]
        if site.filters and attrs["filter"] not in site.filters:
            errors["filter"] = [f"{attrs['filter']!r} is not one of this site's filters: {', '.join(site.filters)}"]
        if "observation_id" not in attrs:
            attrs = attrs | {"observation_id": derived_observation_id(site.pk, attrs["target_id"],
                                                                      attrs["observed_at"], attrs["filter"]),
                             "derived_id": True}
        return attrs | {"site": site, "target": target}, errors


def existing_observations(observation_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Observation]:
    """Stored observations by id, with what their API shape reads (one query)."""
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
        observation_id=attrs["observation_id"], network=site.network, target=target, site=site,
        observed_at=attrs["observed_at"], exposure_sec=attrs["exposure_sec"], filter=attrs["filter"],
        airmass=attrs.get("airmass"), seeing_arcsec=attrs.get("seeing_arcsec"),
        magnitude=photometry.get("magnitude"), magnitude_error=photometry.get("error"),
        comparison_stars=photometry.get("comparison_stars", []), photometry_method=photometry.get("method", ""),
        quality_flags=attrs.get("quality_flags", []), fits_header=attrs.get("fits_header", {}),
        image_ref=attrs.get("image_ref", ""), submitted_by=uploader.user, submitted_with_key=uploader.site_key,
        **position,
    )


# Sent after new observations are stored (in bulk, so no post_save): with the set of
# network ids and target ids they touched. The scheduler marks those networks' lists stale.
observations_stored = Signal()


def store_observations(validated: list[dict], uploader: Uploader) -> list[StoredObservation]:
    """Store validated observations in one transaction; repeats return the stored row.

    A repeat is an ``observation_id`` already stored (an earlier request) or seen earlier in
    the same batch. The batch's sites are locked (``SELECT ... FOR UPDATE``) for the
    transaction, so two racing retries of one site's batch run one after the other: the second
    finds the first's rows and stores nothing (exactly once). The new rows go in with one
    ``bulk_create``; coverage counters of the touched targets are refreshed once per batch.
    """
    if not validated:
        return []
    with transaction.atomic():
        site_ids = sorted({attrs["site"].pk for attrs in validated})
        list(Site.objects.select_for_update().filter(pk__in=site_ids).order_by("pk").values_list("pk", flat=True))
        ids = [attrs["observation_id"] for attrs in validated]
        before = existing_observations(ids)
        new: dict[uuid.UUID, Observation] = {}
        for attrs in validated:
            observation_id = attrs["observation_id"]
            if observation_id not in before and observation_id not in new:
                new[observation_id] = _new_observation(attrs, uploader)
        Observation.objects.bulk_create(list(new.values()))
        rows = dict(new)
    results = []
    for observation_id in ids:
        if observation_id in before:
            results.append(StoredObservation(before[observation_id], created=False))
        else:
            created = observation_id in new
            new.pop(observation_id, None)  # a repeat later in the batch is not new
            results.append(StoredObservation(rows[observation_id], created=created))
    touched = {r.observation.target_id for r in results if r.created}
    if touched:
        refresh_coverage(touched)
        observations_stored.send(Observation, network_ids={r.observation.network_id for r in results if r.created},
                                 target_ids=touched)
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


def submit_observations(items: list[dict], uploader: Uploader, validate: ItemValidator,
                        retry: bool = True) -> BatchOutcome:
    """Store a batch of uploads all or nothing, idempotent on ``observation_id``.

    An item whose ``observation_id`` (sent, or derived from the record) is already stored for
    one of the uploader's sites comes back as that record (``created=False``: a retry stores
    nothing new); one stored by another site is an error. The rest are checked by ``validate``
    and stored in one transaction, only when no item of the batch has an error. A batch costs
    a fixed number of queries, however many items it holds.
    """
    given: dict[int, uuid.UUID] = {}
    for index, item in enumerate(items):
        with contextlib.suppress(ValueError):
            given[index] = uuid.UUID(str(item.get("observation_id")))
    found = existing_observations(given.values())
    allowed_sites = set(uploader.sites().values_list("pk", flat=True))
    stored: list[StoredObservation | None] = [None] * len(items)
    errors: list[dict] = [{} for _ in items]
    pending: dict[int, dict] = {}

    def take_existing(index: int, existing: Observation) -> None:
        if existing.site_id in allowed_sites:
            stored[index] = StoredObservation(existing, created=False)
        else:
            errors[index] = {"observation_id": ["this observation_id is already used by another site"]}

    for index, item in enumerate(items):
        existing = found.get(given.get(index))
        if existing is not None:
            take_existing(index, existing)
            continue
        attrs, problems = validate(item)
        errors[index] = problems
        if attrs is not None and not problems:
            pending[index] = attrs
    derived = {index: attrs["observation_id"] for index, attrs in pending.items() if attrs.get("derived_id")}
    if derived:
        found_derived = existing_observations(derived.values())
        for index, observation_id in derived.items():
            if observation_id in found_derived:
                take_existing(index, found_derived[observation_id])
                del pending[index]
    if any(errors):
        return BatchOutcome([], errors)
    try:
        new = iter(store_observations(list(pending.values()), uploader))
    except IntegrityError:
        # Another site stored one of these ids in the meantime: look again (it is then refused).
        if not retry:
            raise
        return submit_observations(items, uploader, validate, retry=False)
    return BatchOutcome([s if s is not None else next(new) for s in stored], errors)
