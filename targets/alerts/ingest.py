"""Parsed alerts into a network: dedupe, rules, targets, photometry, in one transaction per batch.

Files, streams, polls and the API all come through :func:`ingest_batch`. A batch costs a
handful of queries whatever its size (dedupe, event lookup, one cross-match, two bulk
inserts); targets are created one by one because few alerts make one.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from network.models import Network
from sites.models import Site
from targets.alerts import events
from targets.alerts.models import AlertRule, SurveyPhotometry
from targets.alerts.rules import Reach, Verdict, evaluate
from targets.alerts.scheduler_hooks import scheduler
from targets.alerts.sources.base import ParsedAlert, jd_to_datetime
from targets.models import Alert, AlertStatus, Target, TargetAlias, name_key
from targets.sky import cross_match

log = logging.getLogger(__name__)

# Cone-match an alert to an existing target only when its error region is this small (degrees);
# a GRB's 8-degree circle says nothing about which star it is.
MAX_CONE_MATCH_DEG = 60.0 / 3600
MIN_CONE_MATCH_DEG = 2.0 / 3600


@dataclass
class IngestReport:
    """What one batch did in one network."""

    received: int = 0
    duplicates: int = 0
    matched: int = 0
    ignored: int = 0
    retracted: int = 0
    targets_touched: int = 0
    tiles: int = 0
    photometry: int = 0
    urgent: bool = False

    def add(self, other: IngestReport) -> None:
        for name in ("received", "duplicates", "matched", "ignored", "retracted", "targets_touched", "tiles",
                     "photometry"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.urgent |= other.urgent


def network_reach(network: Network) -> Reach:
    """The network's active sites as the visibility maths sees them (unusable sites left out)."""
    names, observatories, availability = [], [], []
    for site in Site.objects.filter(network=network, is_active=True).order_by("pk"):
        try:
            spec = scheduler().site_spec(site)
        except Exception as exc:  # a site the scheduler refuses is refused here too, with the reason
            log.warning("site %s left out of alert reachability: %s", site.pk, exc)
            continue
        names.append(site.name)
        observatories.append(spec.observatory)
        availability.append(spec.availability)
    return Reach(names, observatories, availability)


def _known_keys(network: Network, alerts: Sequence[ParsedAlert]) -> set[tuple[str, str]]:
    ids = {a.external_id for a in alerts}
    return set(Alert.objects.filter(network=network, source__in={a.source for a in alerts}, external_id__in=ids)
               .values_list("source", "external_id"))


def _event_links(network: Network, alerts: Sequence[ParsedAlert]) -> tuple[dict[str, int], dict[str, int]]:
    """Targets earlier notices of each event were linked to, and targets named like each event."""
    by_event: dict[str, int] = {}
    wanted = Q(external_id__in={c for a in alerts for c in a.cites})
    for source in {a.source for a in alerts}:  # (network, source, event_id) is indexed
        wanted |= Q(source=source, event_id__in={a.event_id for a in alerts if a.source == source})
    rows = (Alert.objects.filter(network=network, target__isnull=False).filter(wanted)
            .order_by("received_at").values_list("source", "event_id", "external_id", "target_id"))
    for source, event_id, external_id, target_id in rows:
        by_event[f"{source}:{event_id}"] = target_id
        by_event[f"cite:{external_id}"] = target_id
    keys = {name_key(n) for a in alerts for n in (a.event_name, a.event_id) if n}
    by_name = dict(Target.objects.filter(network=network, name_key__in=keys).values_list("name_key", "pk"))
    for key, target_id in TargetAlias.objects.filter(network=network, name_key__in=keys).values_list("name_key",
                                                                                                   "target_id"):
        by_name.setdefault(key, target_id)
    return by_event, by_name


def _cone_links(network: Network, alerts: Sequence[ParsedAlert]) -> dict[int, int]:
    """Index of alert -> nearest active target within its (small) error radius."""
    small = [i for i, a in enumerate(alerts) if a.ra_deg is not None and a.error_radius_deg <= MAX_CONE_MATCH_DEG]
    if not small:
        return {}
    radius = max(max(alerts[i].error_radius_deg for i in small), MIN_CONE_MATCH_DEG)
    matches = cross_match([alerts[i].ra_deg for i in small], [alerts[i].dec_deg for i in small],
                          Target.objects.filter(network=network, is_active=True), radius)
    return {small[m.source_index]: m.object_id for m in matches
            if m.separation_deg <= max(alerts[small[m.source_index]].error_radius_deg, MIN_CONE_MATCH_DEG)}


def _target_ref(target: int | Target | None) -> dict:
    """A foreign key given as an id, or as a target saved later in the batch (bulk insert)."""
    return {"target": target} if isinstance(target, Target) else {"target_id": target}


def _photometry(network: Network, target: int | Target, alert: ParsedAlert) -> list[SurveyPhotometry]:
    return [SurveyPhotometry(network=network, **_target_ref(target), source=alert.source, point_id=p.point_id,
                             observed_at=jd_to_datetime(p.jd), jd=p.jd, band=p.band, magnitude=p.magnitude,
                             magnitude_error=p.magnitude_error, limiting_mag=p.limiting_mag)
            for p in alert.photometry]


PHOTOMETRY_COLUMNS = ("network_id", "target_id", "source", "point_id", "observed_at", "jd", "band", "magnitude",
                      "magnitude_error", "limiting_mag")


ALERT_COLUMNS = ("network_id", "source", "external_id", "ra_deg", "dec_deg", "error_radius_arcsec", "alert_type",
                 "priority", "payload", "received_at", "target_id", "event_id", "event_time", "magnitude", "status",
                 "rule_id", "rule_report")


def store_alerts(rows: list[Alert]) -> None:
    """Insert new alerts (already deduplicated); on PostgreSQL with COPY (see `store_photometry`)."""
    if connection.vendor != "postgresql":
        Alert.objects.bulk_create(rows)
        return
    columns = ", ".join(ALERT_COLUMNS)
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {Alert._meta.db_table} ({columns}) FROM STDIN") as copy:
        for a in rows:
            target_id = a.target_id if a.target_id is not None else (a.target.pk if a.target else None)
            copy.write_row((a.network_id, a.source, a.external_id, a.ra_deg, a.dec_deg, a.error_radius_arcsec,
                            a.alert_type, a.priority, json.dumps(a.payload, default=str), a.received_at, target_id,
                            a.event_id, a.event_time, a.magnitude, a.status, a.rule_id,
                            json.dumps(a.rule_report, default=str)))


def store_photometry(points: list[SurveyPhotometry]) -> None:
    """Insert survey points, skipping those already stored (same target, source and point id).

    On PostgreSQL through COPY into a temporary table and one ``INSERT ... ON CONFLICT DO
    NOTHING``: a batch holds tens of thousands of points, and binding them row by row costs
    more than parsing the alerts.
    """
    if connection.vendor != "postgresql":
        SurveyPhotometry.objects.bulk_create(points, ignore_conflicts=True, batch_size=5000)
        return
    table, columns = SurveyPhotometry._meta.db_table, ", ".join(PHOTOMETRY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS datas_survey_load (network_id bigint, target_id bigint, "
                       "source text, point_id text, observed_at timestamptz, jd float8, band text, magnitude float8, "
                       "magnitude_error float8, limiting_mag float8) ON COMMIT DROP")
        with cursor.cursor.copy(f"COPY datas_survey_load ({columns}) FROM STDIN") as copy:
            for p in points:
                copy.write_row((p.network_id, p.target_id or p.target.pk, p.source, p.point_id, p.observed_at, p.jd,
                                p.band, p.magnitude, p.magnitude_error, p.limiting_mag))
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM datas_survey_load "
                       "ON CONFLICT (target_id, source, point_id) DO NOTHING")
        cursor.execute("DELETE FROM datas_survey_load")


def _previous_position(network: Network, alert: ParsedAlert) -> tuple[float, float]:
    earlier = (Alert.objects.filter(network=network, source=alert.source)
               .filter(Q(event_id=alert.event_id) | Q(external_id__in=alert.cites)).order_by("-received_at").first())
    return (earlier.ra_deg, earlier.dec_deg) if earlier else (0.0, 0.0)


def ingest_batch(network: Network, parsed: Iterable[ParsedAlert], now: dt.datetime | None = None) -> IngestReport:
    """Store a batch of parsed alerts in ``network`` (one transaction); known alerts are skipped.

    Each new alert is checked against the network's active rules; a match makes or refines the
    event's target(s), an update refines them, a retraction deactivates them. Alerts linked to
    a target keep their survey photometry. Urgent matches and retractions run a scheduler pass
    for the network as soon as the transaction commits.
    """
    now = now or scheduler()._now()
    report = IngestReport()
    unique: dict[tuple[str, str], ParsedAlert] = {}
    for alert in parsed:
        report.received += 1
        unique.setdefault(alert.key, alert)
    with transaction.atomic():
        known = _known_keys(network, list(unique.values())) if unique else set()
        fresh = [a for key, a in unique.items() if key not in known]
        report.duplicates = report.received - len(fresh)
        if not fresh:
            return report
        rules = list(AlertRule.objects.filter(network=network, is_active=True).select_related("campaign"))
        placeable = [a for a in fresh if a.notice != "retraction"]
        needs_reach = any(r.min_sites for r in rules)
        verdicts = dict(zip(map(id, placeable), evaluate(rules, placeable, network_reach(network) if needs_reach
                                                         else Reach([], [], []), now), strict=True))
        by_event, by_name = _event_links(network, fresh)
        by_cone = _cone_links(network, fresh)
        made_by_event = events.targets_by_event(network, {a.event_key for a in fresh})
        fov_deg = None
        rows, points, retracted_events, pending = [], [], [], []
        for index, alert in enumerate(fresh):
            verdict = verdicts.get(id(alert), Verdict())
            linked = by_event.get(alert.event_key) or next(
                (by_event[f"cite:{c}"] for c in alert.cites if f"cite:{c}" in by_event), None)
            status, target_id, tiles = AlertStatus.IGNORED, None, 0
            ra, dec = alert.ra_deg, alert.dec_deg
            if alert.notice == "retraction":
                ids = events.retract_event(network, alert.event_key, {linked} if linked else set())
                retracted_events.append(alert.event_id)
                retracted_events += list(Alert.objects.filter(network=network, external_id__in=alert.cites)
                                         .values_list("event_id", flat=True))
                status, target_id, report.urgent = AlertStatus.RETRACTED, linked, True
                report.retracted += 1
                report.targets_touched += len(ids)
                if ra is None:
                    # the notice names no position: the event's last one in this network (never mutate
                    # the parsed alert, which other networks receive too)
                    ra, dec = _previous_position(network, alert)
            else:
                made = made_by_event.get(alert.event_key, [])
                rule = verdict.rule or (next((r for r in rules if made and r.pk == made[0].metadata.get("alert_rule")),
                                             None) if made else None)
                known = linked or by_name.get(name_key(alert.event_name or "")) or \
                    by_name.get(name_key(alert.event_id)) or by_cone.get(index)
                if rule is not None and not made and known:
                    # the object is already a target (a manager's, or under another name): use it
                    target_id = known
                    events.join_campaign(network, rule, alert, known)
                elif rule is not None and (verdict.rule is not None or made):
                    if fov_deg is None:
                        fov_deg = events.tiling_fov_deg(network, settings.DATAS_ALERT_DEFAULT_FOV_ARCMIN)
                    if any(t.pk is None for t in made):  # a second notice of a new event in this batch
                        events.save_new(network, pending)
                    if not made and not events.needs_tiles(alert, rule, fov_deg):
                        target_id = events.new_point_target(network, alert, rule, now)  # the common case
                        pending.append((target_id, alert, rule))
                        made_by_event[alert.event_key] = [target_id]
                    else:
                        target, tiles = events.place_event(network, alert, rule, made, now, fov_deg)
                        made_by_event[alert.event_key] = events.event_targets(network, alert.event_key)
                        target_id, report.tiles = target.pk, report.tiles + tiles
                    report.targets_touched += max(1, tiles)
                    report.urgent |= events.is_urgent(alert, rule, now)
                else:
                    target_id = known
                if target_id is not None:
                    status = AlertStatus.MATCHED
                    by_event[alert.event_key] = target_id
                    points += _photometry(network, target_id, alert)
            report.matched += status == AlertStatus.MATCHED
            report.ignored += status == AlertStatus.IGNORED
            rows.append(Alert(
                network=network, source=alert.source, external_id=alert.external_id, event_id=alert.event_id[:120],
                ra_deg=ra, dec_deg=dec, error_radius_arcsec=min(alert.error_radius_deg, 180) * 3600,
                alert_type=alert.alert_type[:40], priority=verdict.rule.target_priority if verdict.rule else 1.0,
                payload=dict(alert.payload, notice=alert.notice, classification=alert.classification,
                             real_bogus=alert.real_bogus, event_name=alert.event_name),
                received_at=now, **_target_ref(target_id), event_time=alert.event_time, magnitude=alert.magnitude,
                status=status, rule=verdict.rule, rule_report=verdict.report))
        events.save_new(network, pending)
        store_alerts(rows)
        if retracted_events:
            Alert.objects.filter(network=network, event_id__in=retracted_events).update(status=AlertStatus.RETRACTED)
        if points:
            store_photometry(points)
            report.photometry = len(points)
        if report.targets_touched or report.matched:
            scheduler().mark_stale(network.pk, reason=f"{report.matched} alert(s) matched, {report.retracted} retracted")
        if report.urgent:
            network_id = network.pk
            transaction.on_commit(lambda: urgent_pass(network_id))
    return report


def urgent_pass(network_id: int) -> None:
    """A scheduler pass now, so agents see an urgent alert (or a retraction) on their next poll."""
    try:
        scheduler().run_network_pass(network_id)
    except Exception:  # the alerts are stored; the next beat's pass will try again
        log.exception("the urgent scheduler pass of network %s failed", network_id)


def networks_for(source: str, slugs: Sequence[str] | None = None) -> list[Network]:
    """Active networks with an active rule taking ``source`` (empty ``sources`` takes any)."""
    networks = Network.objects.filter(is_active=True)
    if slugs:
        networks = networks.filter(slug__in=slugs)
    # Rules are few; JSON containment is not portable (SQLite has none), so the lists are read here.
    taking = {network_id for network_id, sources in AlertRule.objects.filter(is_active=True)
              .values_list("network_id", "sources") if not sources or source in sources}
    return list(networks.filter(pk__in=taking).order_by("pk"))


def ingest_everywhere(alerts: Sequence[ParsedAlert], slugs: Sequence[str] | None = None,
                      now: dt.datetime | None = None) -> dict[str, IngestReport]:
    """Ingest into every network whose rules take each alert's source (one transaction in all)."""
    reports: dict[str, IngestReport] = {}
    by_source: dict[str, list[ParsedAlert]] = {}
    for alert in alerts:
        by_source.setdefault(alert.source, []).append(alert)
    with transaction.atomic():
        for source, batch in by_source.items():
            for network in networks_for(source, slugs):
                reports.setdefault(network.slug, IngestReport()).add(ingest_batch(network, batch, now))
    return reports
