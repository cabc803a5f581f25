"""N.I.N.A. tasking: the user's own Advanced Sequencer template, filled with one target per job.

N.I.N.A. saves sequences with Newtonsoft.Json ``TypeNameHandling``: every object has an
``$id`` and a version-specific ``$type``, collections hold ``$values`` and back-references
are ``{"$ref": id}``. Generating those types ourselves would break with each N.I.N.A.
release, so the user's template is copied and only filled in: the target name and
coordinates (everywhere the template holds coordinates, as N.I.N.A. copies them to
inherited instructions), and one ``SmartExposure`` per filter step (filter name, exposure
time, frame count), cloned from the template's own. Everything else stays as it was. Ids
are renumbered in document order and references remapped, so each file stays loadable.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scheduling.exports.ekos import file_stem
from scheduling.night_plan import TaskingError, TaskingJob

DSO_CONTAINER = "NINA.Sequencer.Container.DeepSkyObjectContainer"
SMART_EXPOSURE = "NINA.Sequencer.SequenceItem.Imaging.SmartExposure"
SWITCH_FILTER = "NINA.Sequencer.SequenceItem.FilterWheel.SwitchFilter"
TAKE_EXPOSURE = "NINA.Sequencer.SequenceItem.Imaging.TakeExposure"
LOOP_CONDITION = "NINA.Sequencer.Conditions.LoopCondition"
INPUT_COORDINATES = "NINA.Astrometry.InputCoordinates"


def type_name(node: Any) -> str:
    """The CLR type of a JSON node, without its assembly (``''`` for non-objects)."""
    return node.get("$type", "").split(",")[0].strip() if isinstance(node, dict) else ""


def walk(node: Any) -> Iterator[dict]:
    """Every JSON object under ``node``, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def sexagesimal(ra_deg: float, dec_deg: float) -> dict[str, Any]:
    """N.I.N.A.'s ``InputCoordinates`` fields for a J2000 position (seconds rounded to 0.01/0.1)."""
    total = round((ra_deg % 360.0) / 15.0 * 3600.0, 2) % 86400.0
    ra_h, rest = divmod(total, 3600.0)
    ra_m, ra_s = divmod(rest, 60.0)
    arcsec = round(abs(dec_deg) * 3600.0, 1)
    dec_d, rest = divmod(arcsec, 3600.0)
    dec_m, dec_s = divmod(rest, 60.0)
    return {"RAHours": int(ra_h), "RAMinutes": int(ra_m), "RASeconds": round(ra_s, 2),
            "NegativeDec": dec_deg < 0, "DecDegrees": int(dec_d), "DecMinutes": int(dec_m),
            "DecSeconds": round(dec_s, 1)}


def renumber(document: Any) -> Any:
    """Give every ``$id`` a fresh number in document order and remap each ``$ref`` to it."""
    mapping: dict[str, str] = {}
    counter = 0

    def visit(node: Any) -> None:
        nonlocal counter
        if isinstance(node, dict):
            if "$id" in node:
                counter += 1
                mapping.setdefault(node["$id"], str(counter))
                node["$id"] = str(counter)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
    for node in walk(document):
        if "$ref" in node:
            if node["$ref"] not in mapping:
                raise TaskingError(f"the template refers to ${{ref}} {node['$ref']} that it never defines")
            node["$ref"] = mapping[node["$ref"]]
    return document


def _fresh_ids(node: Any, prefix: str) -> None:
    """Make a clone's ids distinct from the original's (renumber() later tidies them)."""
    ids = {n["$id"] for n in walk(node) if "$id" in n}
    for n in walk(node):
        if "$id" in n:
            n["$id"] = prefix + n["$id"]
        elif n.get("$ref") in ids:
            n["$ref"] = prefix + n["$ref"]


def fill_target(container: dict, job: TaskingJob, site_filters: Sequence[str] = ()) -> dict:
    """A filled copy of one ``DeepSkyObjectContainer`` for ``job``.

    ``site_filters`` (the wheel's names in slot order) sets each filter's ``_position``.
    """
    if type_name(container) != DSO_CONTAINER:
        raise TaskingError(f"expected a {DSO_CONTAINER}, got {type_name(container) or 'no $type'}")
    filled = copy.deepcopy(container)
    filled["Name"] = job.name
    target = filled.get("Target")
    if not isinstance(target, dict) or "InputCoordinates" not in target:
        raise TaskingError("the template's target container has no Target.InputCoordinates to fill")
    target["TargetName"] = job.name
    target["PositionAngle"] = float(job.position_angle_deg)
    coordinates = sexagesimal(job.ra_deg, job.dec_deg)
    for node in walk(filled):
        if type_name(node) == INPUT_COORDINATES:
            node.update(coordinates)
    smart = _smart_exposures(filled)
    if not smart:
        raise TaskingError("the template has no SmartExposure instruction to fill with the job's frames")
    parent_list, prototype = smart[0]
    for other_list, other in smart[1:]:
        other_list.remove(other)
    position = parent_list.index(prototype)
    clones = []
    for k, step in enumerate(job.steps):
        clone = copy.deepcopy(prototype)
        _fresh_ids(clone, f"s{k}_")
        _set_step(clone, step.filter, step.exposure_sec, step.count, site_filters)
        clones.append(clone)
    parent_list[position:position + 1] = clones
    return filled


def _smart_exposures(node: Any) -> list[tuple[list, dict]]:
    """(containing $values list, SmartExposure) pairs, in document order."""
    found = []
    for obj in walk(node):
        values = obj.get("$values")
        if isinstance(values, list):
            found += [(values, v) for v in values if type_name(v) == SMART_EXPOSURE]
    return found


def _values(node: Any, key: str) -> list:
    """The ``$values`` list of collection ``node[key]``; ``[]`` when the template holds none there."""
    collection = node.get(key) if isinstance(node, dict) else None
    values = collection.get("$values") if isinstance(collection, dict) else None
    return values if isinstance(values, list) else []


def _set_step(smart: dict, filter_name: str, exposure_sec: float, count: int, site_filters: Sequence[str]) -> None:
    items = _values(smart, "Items")
    switch = next((i for i in items if type_name(i) == SWITCH_FILTER), None)
    take = next((i for i in items if type_name(i) == TAKE_EXPOSURE), None)
    loop = next((c for c in _values(smart, "Conditions") if type_name(c) == LOOP_CONDITION), None)
    if switch is None or take is None or loop is None:
        raise TaskingError("the template's SmartExposure lacks a SwitchFilter, TakeExposure or LoopCondition")
    if not isinstance(switch.get("Filter"), dict):
        raise TaskingError("the template's SwitchFilter has no Filter object to fill")
    switch["Filter"]["_name"] = filter_name
    if filter_name in site_filters:
        switch["Filter"]["_position"] = list(site_filters).index(filter_name)
    take["ExposureTime"] = float(exposure_sec)
    take["ImageType"] = "LIGHT"
    loop["Iterations"] = int(count)
    loop["CompletedIterations"] = 0


def fill_template(template: dict, jobs: Sequence[TaskingJob], site_filters: Sequence[str] = ()) -> list[dict]:
    """Filled N.I.N.A. documents: one per job for a target template, one holding every job
    for a whole-sequence template (its target container repeated, once per job).

    Raises `TaskingError` when the template is not shaped as N.I.N.A. writes it.
    """
    try:
        return _fill_template(template, jobs, site_filters)
    except (TypeError, AttributeError) as exc:
        # A hand-edited template can put a list where N.I.N.A. writes an object, or an object
        # where it writes an id; say so instead of failing deep inside the copy.
        raise TaskingError(f"the N.I.N.A. template is malformed ({type(exc).__name__}: {exc}); "
                           f"save it again from N.I.N.A.'s Advanced Sequencer") from exc


def _fill_template(template: dict, jobs: Sequence[TaskingJob], site_filters: Sequence[str]) -> list[dict]:
    if not jobs:
        raise TaskingError("no jobs to export")
    if type_name(template) == DSO_CONTAINER:
        return [renumber(fill_target(template, job, site_filters)) for job in jobs]
    document = copy.deepcopy(template)
    for obj in walk(document):
        values = obj.get("$values")
        if isinstance(values, list):
            containers = [v for v in values if type_name(v) == DSO_CONTAINER]
            if containers:
                position = values.index(containers[0])
                filled = []
                for k, job in enumerate(jobs):
                    one = fill_target(containers[0], job, site_filters)
                    _fresh_ids(one, f"t{k}_")
                    filled.append(one)
                for extra in containers:
                    values.remove(extra)
                values[position:position] = filled
                return [renumber(document)]
    raise TaskingError("the template holds no DeepSkyObjectContainer (a N.I.N.A. target) to fill")


def nina_files(template: dict, jobs: Sequence[TaskingJob], site_filters: Sequence[str] = ()) -> dict[str, str]:
    """File name -> JSON text, as N.I.N.A. writes it (two-space indent)."""
    documents = fill_template(template, jobs, site_filters)
    if len(documents) == 1 and type_name(template) != DSO_CONTAINER:
        return {"tasking.json": json.dumps(documents[0], indent=2, ensure_ascii=False)}
    return {f"{file_stem(i, job.name)}.json": json.dumps(doc, indent=2, ensure_ascii=False)
            for i, (job, doc) in enumerate(zip(jobs, documents, strict=True), start=1)}


def load_template(path: Path) -> dict:
    """Read a template, with a clear error when it is not N.I.N.A. JSON."""
    try:
        template = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise TaskingError(f"cannot read the N.I.N.A. template {path}: {exc}") from exc
    if not isinstance(template, dict) or "$type" not in template:
        raise TaskingError(f"{path} is not a N.I.N.A. sequence or target template (no $type at the top)")
    return template
