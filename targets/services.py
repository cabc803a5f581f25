"""Creating targets and receiving alerts: the write side of the targets app."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from network.models import Network
from targets.models import Alert, Target, TargetAlias, TargetType, name_key
from targets.sky import cross_match

# Alerts closer than this to a target are linked to it even when their error radius is smaller.
MIN_ALERT_MATCH_ARCSEC = 2.0


class NameTaken(ValueError):
    """A target name or alias is already used in the network."""

    def __init__(self, name: str, network: Network) -> None:
        super().__init__(f"{name!r} is already a target name or alias in network {network.slug!r}")
        self.name = name


def names_in_use(network: Network, names: Iterable[str], exclude_target: Target | None = None) -> list[str]:
    """Those of ``names`` already used as a target name or alias in ``network``."""
    keys = {name_key(n): n for n in names}
    targets = Target.objects.filter(network=network, name_key__in=keys)
    aliases = TargetAlias.objects.filter(network=network, name_key__in=keys)
    if exclude_target is not None:
        targets = targets.exclude(pk=exclude_target.pk)
        aliases = aliases.exclude(target=exclude_target)
    used = set(targets.values_list("name_key", flat=True)) | set(aliases.values_list("name_key", flat=True))
    return [keys[k] for k in keys if k in used]


@transaction.atomic
def create_target(network: Network, *, name: str, aliases: Iterable[str] = (), **fields) -> Target:
    """Create a target and its aliases; raise `NameTaken` if any name is used in the network."""
    aliases = [a for a in dict.fromkeys(aliases) if name_key(a) != name_key(name)]
    taken = names_in_use(network, [name, *aliases])
    if taken:
        raise NameTaken(taken[0], network)
    try:
        with transaction.atomic():
            target = Target.objects.create(network=network, name=name, **fields)
            for alias in aliases:
                TargetAlias.objects.create(target=target, name=alias)
    except IntegrityError as exc:  # lost a race with a concurrent create of the same name
        raise NameTaken(name, network) from exc
    return target


@transaction.atomic
class TargetNameInUse(ValueError):
    """The new name of a target is already another target's name or alias."""


@transaction.atomic
def update_target(target: Target, fields: dict, aliases: Iterable[str] | None = None) -> Target:
    """Change a target's fields (and its aliases when given), all or nothing.

    Raises `TargetNameInUse` when the new name is taken in the network and `NameTaken` when an
    alias is.
    """
    if "name" in fields and names_in_use(target.network, [fields["name"]], exclude_target=target):
        raise TargetNameInUse(f"{fields['name']!r} is already a target name or alias in this network")
    for field, value in fields.items():
        setattr(target, field, value)
    if aliases is not None:
        set_aliases(target, aliases)
    target.save()
    return target


def set_aliases(target: Target, aliases: Iterable[str]) -> None:
    """Replace a target's aliases; raise `NameTaken` if one belongs to another target."""
    aliases = [a for a in dict.fromkeys(aliases) if name_key(a) != target.name_key]
    taken = names_in_use(target.network, aliases, exclude_target=target)
    if taken:
        raise NameTaken(taken[0], target.network)
    target.aliases.exclude(name_key__in=[name_key(a) for a in aliases]).delete()
    existing = set(target.aliases.values_list("name_key", flat=True))
    for alias in aliases:
        if name_key(alias) not in existing:
            TargetAlias.objects.create(target=target, name=alias)


@dataclass(frozen=True)
class ReceivedAlert:
    alert: Alert
    created: bool


def receive_alert(network: Network, *, source: str, external_id: str, ra_deg: float, dec_deg: float,
                  create_target: bool = False, **fields) -> ReceivedAlert:
    """Store an alert once per (network, source, external_id) and link it to its target.

    A repeat of a known alert returns the stored one unchanged. A new alert is linked to the
    nearest active target within its error radius (at least `MIN_ALERT_MATCH_ARCSEC`); with
    ``create_target`` an unmatched alert gets a new transient target.
    """
    existing = Alert.objects.filter(network=network, source=source, external_id=external_id).first()
    if existing is not None:
        return ReceivedAlert(existing, created=False)
    radius_arcsec = max(float(fields.get("error_radius_arcsec") or 0), MIN_ALERT_MATCH_ARCSEC)
    candidates = Target.objects.filter(network=network, is_active=True)
    matches = cross_match([ra_deg], [dec_deg], candidates, radius_arcsec / 3600)
    target = Target.objects.get(pk=matches[0].object_id) if matches else None
    try:
        with transaction.atomic():
            if target is None and create_target:
                name = f"{source} {external_id}"
                clash = Target.objects.filter(network=network).filter(
                    Q(name_key=name_key(name)) | Q(aliases__name_key=name_key(name))).first()
                target = clash or create_target_for_alert(network, name, ra_deg, dec_deg, fields)
            alert = Alert.objects.create(network=network, source=source, external_id=external_id,
                                         ra_deg=ra_deg, dec_deg=dec_deg, target=target, **fields)
    except IntegrityError:  # the same alert arrived twice at once; the other request stored it
        return ReceivedAlert(Alert.objects.get(network=network, source=source, external_id=external_id), False)
    return ReceivedAlert(alert, created=True)


def create_target_for_alert(network: Network, name: str, ra_deg: float, dec_deg: float, fields: dict) -> Target:
    return Target.objects.create(network=network, name=name, ra_deg=ra_deg, dec_deg=dec_deg,
                                 target_type=TargetType.TRANSIENT, priority=float(fields.get("priority") or 1.0),
                                 metadata={"created_from_alert": True})
