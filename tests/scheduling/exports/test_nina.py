"""N.I.N.A.: the user's template keeps its structure; targets, coordinates and exposures are filled."""
import copy
import csv
import io
import json

import pytest

from scheduling.exports import tasking_files
from scheduling.exports.nina import (
    DSO_CONTAINER,
    fill_template,
    load_template,
    nina_files,
    sexagesimal,
    type_name,
    walk,
)
from scheduling.night_plan import JobStep, TaskingError, TaskingJob

WHEEL = ["L", "R", "G", "B", "Ha", "OIII"]
JOBS = [
    TaskingJob("M 42", 83.8221, -5.3911, (JobStep("Ha", 300, 12), JobStep("OIII", 300, 6)), 0, 3600, 25.0),
    TaskingJob("M31", 10.6847, 41.2687, (JobStep("L", 120, 20),), 3600, 7200, 25.0, position_angle_deg=35.0),
]


@pytest.fixture(scope="module")
def template(shared_data):
    return load_template(shared_data / "nina" / "phtnnz_astro_Target_L_only.template.json")


def skeleton(node):
    """The document's shape: $types and keys in order, with values and ids left out."""
    if isinstance(node, dict):
        return (type_name(node), tuple((k, skeleton(v)) for k, v in node.items() if k not in ("$id", "$ref")))
    if isinstance(node, list):
        return tuple(skeleton(v) for v in node)
    return None


def check_references(document):
    """Ids unique; every $ref points to an id defined earlier in the file (Newtonsoft reads in order)."""
    seen = set()
    for node in walk(document):
        if "$id" in node:
            assert node["$id"] not in seen
            seen.add(node["$id"])
        if "$ref" in node:
            assert node["$ref"] in seen


def smart_exposures(document):
    out = []
    for node in walk(document):
        if type_name(node) == "NINA.Sequencer.SequenceItem.Imaging.SmartExposure":
            items = node["Items"]["$values"]
            loop = node["Conditions"]["$values"][0]
            out.append((items[0]["Filter"]["_name"], items[1]["ExposureTime"], loop["Iterations"],
                        items[0]["Filter"]["_position"]))
    return out


def test_sexagesimal_coordinates():
    assert sexagesimal(83.8221, -5.3911) == {"RAHours": 5, "RAMinutes": 35, "RASeconds": 17.3, "NegativeDec": True,
                                             "DecDegrees": 5, "DecMinutes": 23, "DecSeconds": 28.0}
    assert sexagesimal(359.99999, 0.0)["RAHours"] == 0  # rounds into the next day, not 24h


def test_one_filled_file_per_job_keeps_the_template_structure(template):
    original = copy.deepcopy(template)
    documents = fill_template(template, JOBS, WHEEL)
    assert template == original  # the template itself is untouched
    assert len(documents) == 2
    m42, m31 = documents
    for doc in documents:
        check_references(doc)
        assert type_name(doc) == DSO_CONTAINER
    # M31 has one filter step like the template: the shape is the template's, value for value aside.
    assert skeleton(m31) == skeleton(template)
    assert m31["Name"] == "M31" and m31["Target"]["TargetName"] == "M31"
    assert m31["Target"]["PositionAngle"] == 35.0
    coordinates = [n for n in walk(m31) if type_name(n) == "NINA.Astrometry.InputCoordinates"]
    assert len(coordinates) == 5 and all(c["RAHours"] == 0 and c["DecDegrees"] == 41 for c in coordinates)
    assert smart_exposures(m31) == [("L", 120.0, 20, 0)]
    # M 42 has two steps: the template's SmartExposure appears twice, everything else unchanged.
    assert smart_exposures(m42) == [("Ha", 300.0, 12, 4), ("OIII", 300.0, 6, 5)]
    assert len(list(walk(m42))) == len(list(walk(template))) + len(list(walk(_smart(template))))
    assert m42["Items"]["$values"][0] == template["Items"]["$values"][0] | {"$id": m42["Items"]["$values"][0]["$id"]}


def _smart(document):
    return next(n for n in walk(document) if type_name(n) == "NINA.Sequencer.SequenceItem.Imaging.SmartExposure")


def test_a_whole_sequence_template_gets_one_target_container_per_job(template):
    root = {"$id": "900", "$type": "NINA.Sequencer.Container.SequenceRootContainer, NINA.Sequencer",
            "Items": {"$id": "901", "$type": "System.Collections.ObjectModel.ObservableCollection`1, System",
                      "$values": [{"$id": "902", "$type": "NINA.Sequencer.Container.TargetAreaContainer, NINA.Sequencer",
                                   "Items": {"$id": "903", "$type": "Collection", "$values": [copy.deepcopy(template)]},
                                   "Parent": {"$ref": "900"}}]}}
    (document,) = fill_template(root, JOBS, WHEEL)
    check_references(document)
    area = document["Items"]["$values"][0]["Items"]["$values"]
    assert [c["Name"] for c in area] == ["M 42", "M31"]
    assert list(nina_files(root, JOBS, WHEEL)) == ["tasking.json"]


def test_files_bad_templates_and_the_registry(template, tmp_path):
    files = tasking_files("nina", JOBS, WHEEL, nina_template=template)
    assert list(files) == ["01_M_42.json", "02_M31.json"]
    assert json.loads(files["02_M31.json"])["Name"] == "M31"
    with pytest.raises(TaskingError, match="no DeepSkyObjectContainer"):
        fill_template({"$type": "Something, Else"}, JOBS)
    no_exposure = copy.deepcopy(template)
    imaging = no_exposure["Items"]["$values"][4]["Items"]["$values"]
    imaging.clear()
    with pytest.raises(TaskingError, match="no SmartExposure"):
        fill_template(no_exposure, JOBS)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(TaskingError, match="not a N.I.N.A."):
        load_template(bad)


def test_csv_has_one_row_per_job_step():
    rows = list(csv.DictReader(io.StringIO(tasking_files("csv", JOBS, WHEEL)["tasking.csv"])))
    assert [(r["order"], r["target"], r["filter"], r["count"]) for r in rows] == [
        ("1", "M 42", "Ha", "12"), ("1", "M 42", "OIII", "6"), ("2", "M31", "L", "20")]
    assert float(rows[0]["ra_hours"]) == pytest.approx(83.8221 / 15)
    assert rows[2]["start_utc"] == "1970-01-01T01:00:00Z"
