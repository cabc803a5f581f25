"""Tonight's tasking for a site: from the database to files, by API, command and admin action."""
import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from scheduling.exports.ekos import read_scheduler_list, read_sequence
from scheduling.exports.nina import SMART_EXPOSURE, type_name, walk
from scheduling.tasking import plan_for_site
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_observation, make_site, make_target
from tests.scheduling.helpers import NIGHT, clear_skies

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    site = world.a_site
    site.filters = ["Luminance", "Red", "H-Alpha"]
    site.save()
    clear_skies(site, world.b_site)
    world.nebula = make_target(world.a, name="NGC 7635", ra_deg=350.2, dec_deg=61.2, priority=4.0,
                               required_filters=["Ha", "L"], exposure_sec=300, total_hours=2.0)
    return world


def url(site):
    return f"/api/v1/sites/{site.pk}/tasking"


def unzip(response):
    return {n: z.read(n).decode() for z in [zipfile.ZipFile(io.BytesIO(response.content))] for n in z.namelist()}


def test_plan_subtracts_recorded_exposure_and_uses_the_wheel_names(world):
    make_observation(world.nebula, world.a_site, filter="H-Alpha", exposure_sec=1800, observed_at=NIGHT)
    plan = plan_for_site(world.a_site, NIGHT)
    nebula = next(j for j in plan.jobs if j.name == "NGC 7635")
    steps = {s.filter: s.exposure_sec * s.count for s in nebula.steps}
    assert steps == {"H-Alpha": 3600 - 1800, "Luminance": 3600}
    assert any(j.name == "Delta Cephei" for j in plan.jobs)  # a visit from the ranked list


def test_agent_downloads_ekos_files_for_its_site(world):
    response = agent_client(world.a_key).get(url(world.a_site), {"profile": "Sim", "sequence_dir": "/data/t"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    files = unzip(response)
    jobs = read_scheduler_list(files["tasking.esl"])
    assert {j["name"] for j in jobs} >= {"NGC 7635", "Delta Cephei"}
    nebula = next(j for j in jobs if j["name"] == "NGC 7635")
    assert nebula["ra_hours"] == pytest.approx(350.2 / 15) and nebula["sequence"].startswith("/data/t/")
    sequence = read_sequence(files[nebula["sequence"].rsplit("/", 1)[1]])
    assert {c["filter"] for c in sequence} == {"H-Alpha", "Luminance"}


def test_csv_and_nina_downloads(world, shared_data):
    client = person_client(world.a_observer)
    csv_response = client.get(url(world.a_site), {"output": "csv"})
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    assert "NGC 7635" in csv_response.content.decode()
    template = json.loads((shared_data / "nina" / "phtnnz_astro_Target_L_only.template.json").read_text())
    nina = client.post(url(world.a_site), {"output": "nina", "template": template}, format="json")
    assert nina.status_code == 200
    documents = [json.loads(text) for text in unzip(nina).values()]
    assert "NGC 7635" in {d["Name"] for d in documents}


def test_tasking_refusals(world):
    assert agent_client(world.b_key).get(url(world.a_site)).status_code == 404
    assert person_client(world.a_viewer).get(url(world.a_site)).status_code == 403
    bad = person_client(world.a_observer).get(url(world.a_site), {"output": "acp"})
    assert bad.status_code == 400 and "output" in bad.json()
    relative = person_client(world.a_observer).get(url(world.a_site), {"sequence_dir": "tasking"})
    assert relative.status_code == 400 and "absolute" in str(relative.json())
    no_template = person_client(world.a_observer).post(url(world.a_site), {"output": "nina"}, format="json")
    assert no_template.status_code == 400 and "template" in str(no_template.json())
    empty = make_site(world.a, name="Empty", latitude=-89.0)
    clear_skies(empty)
    nothing = person_client(world.a_manager).get(url(empty))
    assert nothing.status_code == 400 and "nothing to observe" in str(nothing.json())


def test_export_tasking_command(world, tmp_path, shared_data):
    call_command("export_tasking", "--site", str(world.a_site.pk), "--out", str(tmp_path / "ekos"),
                 "--when", NIGHT.isoformat(), stdout=io.StringIO())
    esl = (tmp_path / "ekos" / "tasking.esl").read_text()
    assert all(j["sequence"].startswith(str(tmp_path / "ekos")) for j in read_scheduler_list(esl))
    out = io.StringIO()
    call_command("export_tasking", "--site", world.a_site.name, "--format", "nina", "--out", str(tmp_path / "nina"),
                 "--template", str(shared_data / "nina" / "phtnnz_astro_Target_L_only.template.json"), stdout=out)
    assert "job(s)" in out.getvalue() and list((tmp_path / "nina").glob("*.json"))
    with pytest.raises(CommandError, match="no site"):
        call_command("export_tasking", "--site", "Atlantis", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("export_tasking", "--site", str(world.a_site.pk), "--out", str(tmp_path), "--when", "tonight")


def test_schedule_command(world):
    out = io.StringIO()
    call_command("schedule", "--site", world.a_site.name, stdout=out)
    text = out.getvalue()
    assert "A Observatory (net-a)" in text and "NGC 7635" in text and "H-Alpha" in text
    cached = io.StringIO()
    call_command("schedule", "--site", str(world.a_site.pk), "--cached", "--json", stdout=cached)
    assert json.loads(cached.getvalue())["site_id"] == world.a_site.pk
    make_site(world.b, name="A Observatory")
    with pytest.raises(CommandError, match="add --network"):
        call_command("schedule", "--site", "A Observatory")
    call_command("schedule", "--site", "A Observatory", "--network", "net-b", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--site"):
        call_command("schedule")


def test_admin_actions(world, admin_client):
    changelist = "/admin/sites/site/"
    zipped = admin_client.post(changelist, {"action": "download_ekos_tasking", "_selected_action": [world.a_site.pk]})
    assert zipped.status_code == 200 and any(n.endswith("tasking.esl") for n in unzip(zipped))
    recompute = admin_client.post(changelist, {"action": "recompute_schedule", "_selected_action": [world.a_site.pk]},
                                  follow=True)
    assert "site lists" in recompute.content.decode()


def _break_smart_items(template):
    for node in walk(template):
        if type_name(node) == SMART_EXPOSURE:
            node["Items"] = []


def _break_smart_conditions(template):
    for node in walk(template):
        if type_name(node) == SMART_EXPOSURE:
            node["Conditions"] = "none"


def _unhashable_id(template):
    next(n for n in walk(template) if "$id" in n)["$id"] = ["1"]


def _number_id_inside_smart_exposure(template):
    smart = next(n for n in walk(template) if type_name(n) == SMART_EXPOSURE)
    next(n for n in walk(smart) if "$id" in n)["$id"] = 7


@pytest.mark.parametrize("damage", [_break_smart_items, _break_smart_conditions, _unhashable_id,
                                    _number_id_inside_smart_exposure])
def test_malformed_nina_template_is_a_clear_refusal(world, shared_data, damage):
    template = json.loads((shared_data / "nina" / "phtnnz_astro_Target_L_only.template.json").read_text())
    damage(template)
    client = person_client(world.a_observer)
    client.raise_request_exception = False
    response = client.post(url(world.a_site), {"output": "nina", "template": template}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "template" in str(response.json())
