"""`manage.py ingest_alerts` on the real samples, the rules' verdicts, updates and retractions, the API."""
import json

import pytest
from django.core.management import CommandError, call_command

from targets.models import Alert, AlertRule, Campaign, SurveyPhotometry, Target
from tests.network.api_helpers import person_client
from tests.network.factories import build_world, make_site, make_target

pytestmark = pytest.mark.django_db
SAMPLES = ["ztf_2019_01_10_739260766315010006.avro", "gcn_kafka_fermi_gbm_trigger.flight1.example.json",
           "gcn_kafka_icecube_lvk_nu_track_search.example.json", "gcn_kafka_maxi_gsc.unknown.ellipse.example.json",
           "voevent_ASASSN_2016fvf.xml", "voevent_Gaia16aac.xml", "gaia_alerts_head.csv",
           "tns_public_objects_sample.csv", "tns_get_object_examples.json"]


@pytest.fixture
def world():
    return build_world()


def ingest(*paths, network="net-a"):
    call_command("ingest_alerts", *[str(p) for p in paths], "--network", network, verbosity=0)


def test_samples_land_at_their_positions_once(world, samples, tmp_path):
    make_site(world.a, fov_arcmin=120)
    AlertRule.objects.create(network=world.a, name="Everything", max_error_radius_deg=20, max_tiles=500)
    # content, not the extension, decides the format
    renamed = tmp_path / "packet.bin"
    renamed.write_bytes((samples / SAMPLES[0]).read_bytes())
    ingest(renamed, *[samples / name for name in SAMPLES[1:]])
    alerts = Alert.objects.filter(network=world.a)
    assert alerts.count() == 1 + 3 + 2 + 15 + 2 + 1
    assert set(alerts.values_list("status", flat=True)) == {"matched"}
    ztf = alerts.get(source="ZTF")
    assert (ztf.event_id, round(ztf.ra_deg, 7), round(ztf.dec_deg, 7)) == ("ZTF17aaacxxf", 75.2007803, 35.3613954)
    assert ztf.target.name == "ZTF17aaacxxf" and ztf.rule.name == "Everything"
    assert SurveyPhotometry.objects.filter(target=ztf.target).count() == 29
    gaia = alerts.get(external_id="ivo://gaia.cam.uk/alerts#Gaia16aac")
    assert (gaia.ra_deg, gaia.dec_deg) == (73.29423, 7.35212)
    assert Target.objects.get(network=world.a, name="SN 2004eo").ra_deg == 308.22579
    gbm = alerts.get(source="GCN", event_id="Fermi:745121685")
    assert gbm.error_radius_arcsec == pytest.approx(8.32 * 3600)
    tiles = Target.objects.filter(network=world.a, metadata__alert_event="GCN:Fermi:745121685")
    assert tiles.count() > 20 and gbm.target == tiles.get(name="Fermi bn240812094 tile 001")
    assert sum(t.metadata["tile_probability"] for t in tiles) >= 0.9
    campaign = Campaign.objects.get(network=world.a, name="Fermi bn240812094 tiles")
    assert campaign.coverage_policy == "diverse" and campaign.targets.count() == tiles.count()
    before = (Alert.objects.count(), Target.objects.count(), SurveyPhotometry.objects.count())
    ingest(renamed, *[samples / name for name in SAMPLES[1:]])
    assert (Alert.objects.count(), Target.objects.count(), SurveyPhotometry.objects.count()) == before
    listing = person_client(world.a_viewer).get("/api/v1/alerts", {"source": "ZTF"}).json()["results"]
    assert [(a["external_id"], a["status"], a["target_name"]) for a in listing] == [
        ("739260766315010006", "matched", "ZTF17aaacxxf")]
    cone = person_client(world.a_viewer).get("/api/v1/alerts", {"ra": 73.29, "dec": 7.35, "radius_deg": 0.1}).json()
    assert [a["external_id"] for a in cone["results"]] == ["ivo://gaia.cam.uk/alerts#Gaia16aac"]
    assert person_client(world.b_viewer).get("/api/v1/alerts").json()["results"] == []


def test_rules_record_why_they_did_not_match(world, samples):
    AlertRule.objects.create(network=world.a, name="Bright ZTF", sources=["ZTF"], mag_max=14.0, position=1)
    AlertRule.objects.create(network=world.a, name="Gaia SNe", sources=["Gaia"], classifications=["SN Ia"],
                             campaign_name="Gaia SNe Ia", position=2)
    ingest(samples / "ztf_2019_01_10_739260766315010006.avro", samples / "gaia_alerts_head.csv")
    ztf = Alert.objects.get(source="ZTF")
    assert ztf.status == "ignored" and ztf.target is None and ztf.rule is None
    assert [r["reasons"] for r in ztf.rule_report] == [
        ["magnitude 15.37 fainter than 14.0"], ["source ZTF is not one of ['Gaia']", "class none is not one of ['SN Ia']"]]
    matched = Alert.objects.filter(source="Gaia", status="matched")
    assert sorted(matched.values_list("external_id", flat=True)) == ["Gaia22cxq", "Gaia22cxr"]
    campaign = Campaign.objects.get(network=world.a, name="Gaia SNe Ia")
    assert sorted(campaign.targets.values_list("name", flat=True)) == ["Gaia22cxq", "Gaia22cxr"]
    assert Target.objects.get(name="Gaia22cxr").aliases.get().name == "SN2022ojr"


def test_alert_attaches_to_a_known_target_by_cone(world, samples):
    known = make_target(world.a, name="Known star", ra_deg=75.2007803 + 0.5 / 3600, dec_deg=35.3613954)
    ingest(samples / "ztf_2019_01_10_739260766315010006.avro")  # no rule: attached, not created
    alert = Alert.objects.get(source="ZTF")
    assert (alert.status, alert.target) == ("matched", known)
    assert SurveyPhotometry.objects.filter(target=known).count() == 29
    curve = person_client(world.a_viewer).get(f"/api/v1/lightcurve/{known.pk}").json()
    assert {band: len(points) for band, points in curve["survey"].items()} == {
        "ZTF:ztf-g": SurveyPhotometry.objects.filter(band="ztf-g").count(),
        "ZTF:ztf-r": SurveyPhotometry.objects.filter(band="ztf-r").count()}


def test_a_matched_alert_of_a_known_object_joins_its_target(world, samples):
    mine = make_target(world.a, name="ZTF17aaacxxf", ra_deg=75.2, dec_deg=35.36)
    AlertRule.objects.create(network=world.a, name="ZTF", sources=["ZTF"], campaign_name="ZTF picks")
    ingest(samples / "ztf_2019_01_10_739260766315010006.avro")
    alert = Alert.objects.get(source="ZTF")
    assert (alert.status, alert.target, alert.rule.name) == ("matched", mine, "ZTF")
    assert Target.objects.filter(network=world.a, name="ZTF17aaacxxf").count() == 1
    assert list(Campaign.objects.get(name="ZTF picks").targets.all()) == [mine]
    assert SurveyPhotometry.objects.filter(target=mine).count() == 29


def test_update_refines_and_retraction_deactivates(world, samples, tmp_path):
    AlertRule.objects.create(network=world.a, name="GRBs", sources=["GCN"], campaign_name="Follow-up {event}")
    notice = json.loads((samples / "gcn_kafka_maxi_gsc.unknown.ellipse.example.json").read_bytes())
    first = tmp_path / "initial.json"
    first.write_text(json.dumps(notice | {"record_number": 1, "alert_type": "initial", "ra_dec_error": 0.3}))
    better = tmp_path / "update.json"
    better.write_text(json.dumps(notice | {"record_number": 2, "ra": 346.6, "dec": 18.5, "ra_dec_error": 0.05}))
    retraction = tmp_path / "retraction.json"
    retraction.write_text(json.dumps({k: notice[k] for k in ("$schema", "mission", "id", "alert_tense")}
                                     | {"alert_type": "retraction", "record_number": 3}))
    ingest(first, better)
    target = Target.objects.get(network=world.a, name="GRB 230220A")
    assert (target.ra_deg, target.dec_deg, target.metadata["error_radius_deg"]) == (346.6, 18.5, 0.05)
    campaign = Campaign.objects.get(name="Follow-up GRB 230220A")
    assert campaign.is_active and list(campaign.targets.all()) == [target]
    ingest(retraction)
    target.refresh_from_db()
    campaign.refresh_from_db()
    assert not target.is_active and not campaign.is_active
    assert set(Alert.objects.filter(event_id="MAXI:9995289617").values_list("status", flat=True)) == {"retracted"}


def test_bad_files_are_reported_and_the_rest_ingested(world, samples, tmp_path):
    junk = tmp_path / "junk.avro"
    junk.write_bytes(b"Obj\x01 truncated")
    with pytest.raises(CommandError, match="1 of 2 file"):
        ingest(junk, samples / "voevent_Gaia16aac.xml")
    assert Alert.objects.filter(network=world.a).count() == 1
    with pytest.raises(CommandError, match="no network"):
        ingest(samples / "voevent_Gaia16aac.xml", network="nope")


RETRACTION = b"""<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0" role="observation"
 ivorn="ivo://voevent.4pisky.org/ASASSN#retraction-2016fvf"><Who><Date>2016-09-27T00:00:00</Date></Who>
<Citations><EventIVORN cite="retraction">ivo://voevent.4pisky.org/ASASSN#2016-09-25.47_2016fvf_PTSS-16nqb_PS16ejf</EventIVORN>
<Description>not a transient</Description></Citations></voe:VOEvent>"""


def test_voevent_retraction_cites_the_event(world, samples, tmp_path):
    AlertRule.objects.create(network=world.a, name="ASAS-SN", sources=["ASAS-SN"])
    ingest(samples / "voevent_ASASSN_2016fvf.xml")
    target = Alert.objects.get(source="ASAS-SN").target
    assert target.is_active and (target.ra_deg, target.dec_deg) == (345.0172083333333, 17.84811111111111)
    retraction = tmp_path / "retraction.xml"
    retraction.write_bytes(RETRACTION)
    ingest(retraction)
    target.refresh_from_db()
    assert not target.is_active
    assert set(Alert.objects.filter(source="ASAS-SN").values_list("status", flat=True)) == {"retracted"}
    assert Alert.objects.get(external_id__endswith="retraction-2016fvf").ra_deg == target.ra_deg
