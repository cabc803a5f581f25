"""AAVSO Extended File Format export, validated field by field by an independent reader."""
import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time

from observations.exports.aavso import AAVSO_FILTERS, ExportError, aavso_filter, extended_format
from observations.models import Observation
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_campaign, make_observation, make_site, make_target

pytestmark = pytest.mark.django_db
WHEN = datetime(2025, 12, 1, 1, 2, 3, tzinfo=UTC)
CATALOG = "Tycho-2 VT"


def ensemble(n: int = 3) -> list[dict]:
    stars = [{"name": f"J0347{i:02d}.0+241000", "ra_deg": 56.9 + i / 100, "dec_deg": 24.1, "catalog_mag": 9.5 + i / 10,
              "instrumental_mag": -8.1 + i / 10, "instrumental_err": 0.004, "used": True, "residual": 0.001,
              "role": "comparison", "catalog": CATALOG} for i in range(n)]
    stars.append({"name": "J034801.0+242000", "catalog_mag": 10.2, "measured_mag": 10.213, "error": 0.011,
                  "residual": 0.013, "instrumental_mag": -7.4321, "role": "check", "catalog": CATALOG})
    return stars


@pytest.fixture
def world():
    world = build_world()
    site = world.a_site
    world.var = make_target(world.a, name="V1 Tau", ra_deg=56.97, dec_deg=24.32)
    world.named = make_target(world.a, name="My favourite", ra_deg=83.8, dec_deg=-5.4,
                              metadata={"aavso_name": "V0001 Ori", "aavso_chart": "X28765ABC"})
    world.long = make_target(world.a, name="A target whose name is far too long for WebObs", ra_deg=10, dec_deg=10)
    make = lambda target, minutes, **f: make_observation(target, site, observed_at=WHEN + timedelta(minutes=minutes),  # noqa: E731
                                                         **f)
    world.obs = {
        "ensemble": make(world.var, 0, filter="V", magnitude=10.4871, magnitude_error=0.0123, airmass=1.23456,
                         photometry_method="differential-ensemble", comparison_stars=ensemble(),
                         quality_flags=["low_snr"]),
        "single": make(world.named, 5, filter="Rc", magnitude=-1.25, magnitude_error=None, airmass=None,
                       photometry_method="differential-single",
                       comparison_stars=[{"name": "105", "catalog_mag": 10.5, "instrumental_mag": -7.777,
                                          "role": "comparison", "used": True},
                                         {"name": "112", "catalog_mag": 11.2, "instrumental_mag": -7.0, "role": "check"}]),
        "halpha": make(world.var, 10, filter="Ha 7nm", photometry_method="differential-ensemble",
                       comparison_stars=ensemble()),
        "instrumental": make(world.var, 15, photometry_method="instrumental"),
        "no_magnitude": make(world.var, 20, magnitude=None, photometry_method="differential-ensemble"),
        "long_name": make(world.long, 25, photometry_method="ensemble", comparison_stars=ensemble()),
    }
    other = make_site(world.a, filters=["V"])
    world.others = make_observation(world.var, other, observed_at=WHEN, photometry_method="ensemble")
    return world


def read_extended(text: str) -> tuple[dict, list[dict]]:
    """An independent reader applying every rule of the format; returns header and rows."""
    lines = text.split("\n")
    assert lines[-1] == "" and all(lines[:-1]), "lines end with a newline, no blank lines"
    header, body = {}, []
    for line in lines[:-1]:
        if line.startswith("#"):
            assert not body, "parameters come before the data"
            key, _, value = line[1:].partition("=")
            header[key] = value
        else:
            body.append(line)
    assert list(header)[:6] == ["TYPE", "OBSCODE", "SOFTWARE", "DELIM", "DATE", "OBSTYPE"]
    assert header["TYPE"] == "EXTENDED" and re.fullmatch(r"[A-Z0-9]+", header["OBSCODE"])
    assert 0 < len(header["SOFTWARE"]) <= 255
    delimiter = {"tab": "\t", "comma": ","}.get(header["DELIM"], header["DELIM"])
    assert len(delimiter) == 1 and delimiter not in "|# " and 32 <= ord(delimiter) <= 126 or delimiter == "\t"
    assert header["DATE"] in ("JD", "HJD", "EXCEL") and header["OBSTYPE"] in ("CCD", "DSLR", "PEP")
    names = ["STARID", "DATE", "MAGNITUDE", "MAGERR", "FILTER", "TRANS", "MTYPE", "CNAME", "CMAG", "KNAME", "KMAG",
             "AIRMASS", "GROUP", "CHART", "NOTES"]
    rows = []
    for line in body:
        fields = line.split(delimiter)
        assert len(fields) == 15, line
        row = dict(zip(names, fields, strict=True))
        limits = {"STARID": 30, "DATE": 16, "MAGNITUDE": 8, "MAGERR": 6, "CNAME": 20, "CMAG": 8, "KNAME": 20,
                  "KMAG": 8, "AIRMASS": 7, "GROUP": 5, "CHART": 20}
        for name, limit in limits.items():
            assert 0 < len(row[name]) <= limit, (name, row[name])
        assert all(v == v.strip() and v for v in row.values()), "no empty or padded fields: 'na' for missing"
        assert re.fullmatch(r"\d{7}\.\d+", row["DATE"])
        assert re.fullmatch(r"<?-?\d+\.\d+", row["MAGNITUDE"]), "a dot is required"
        for name in ("MAGERR", "CMAG", "KMAG", "AIRMASS"):
            assert row[name] == "na" or re.fullmatch(r"-?\d+\.\d+", row[name]), (name, row[name])
        assert row["FILTER"] in AAVSO_FILTERS and row["TRANS"] in ("YES", "NO")
        assert row["MTYPE"] in ("STD", "DIF", "ABS")
        if row["MTYPE"] == "DIF":
            assert row["CNAME"] != "na", "differential requires CNAME"
        if row["CNAME"] == "ENSEMBLE":
            assert row["CMAG"] == "na"
        assert row["GROUP"] == "na" or re.fullmatch(r"\d{1,5}", row["GROUP"])
        assert row["NOTES"] == "na" or all(re.fullmatch(r"[A-Z]+=[^|]+", part) for part in row["NOTES"].split("|")[1:])
        rows.append(row)
    return header, rows


def test_extended_format_field_by_field(world):
    observations = Observation.objects.filter(site=world.a_site).select_related("target", "site").order_by("observed_at")
    report = extended_format(observations, obscode="XYZ", software="DATAS test")
    header, rows = read_extended(report.text)
    assert header == {"TYPE": "EXTENDED", "OBSCODE": "XYZ", "SOFTWARE": "DATAS test", "DELIM": ",", "DATE": "JD",
                      "OBSTYPE": "CCD"}
    assert report.rows == len(rows) == 2
    skipped = dict(report.skipped)
    assert skipped == {
        str(world.obs["halpha"].observation_id): "filter 'Ha 7nm' has no AAVSO code",
        str(world.obs["instrumental"].observation_id):
            "photometry method 'instrumental' is not standardised against comparison stars",
        str(world.obs["no_magnitude"].observation_id): "no magnitude",
        str(world.obs["long_name"].observation_id):
            "STARID 'A target whose name is far too long for WebObs' is longer than 30 characters",
    }
    first, second = rows
    assert first == {
        "STARID": "V1 Tau", "DATE": f"{Time(WHEN).jd:.5f}", "MAGNITUDE": "10.487", "MAGERR": "0.012", "FILTER": "V",
        "TRANS": "NO", "MTYPE": "STD", "CNAME": "ENSEMBLE", "CMAG": "na", "KNAME": "J034801.0+242000",
        "KMAG": "10.213", "AIRMASS": "1.2346", "GROUP": "na", "CHART": "Tycho-2",
        "NOTES": f"|KMAGINS=-7.4321|KREFMAG=10.200|VX=1.2346|NCOMP=3|FLAGS=low_snr|OBSID={world.obs['ensemble'].observation_id}",
    }
    assert float(first["DATE"]) == pytest.approx(Time(WHEN).jd, abs=1e-5)
    assert second["STARID"] == "V0001 Ori" and second["FILTER"] == "R" and second["MAGNITUDE"] == "-1.250"
    assert (second["MAGERR"], second["AIRMASS"], second["CHART"]) == ("na", "na", "X28765ABC")
    assert (second["CNAME"], second["CMAG"], second["KNAME"], second["KMAG"]) == ("105", "-7.777", "112", "-7.000")
    assert "|CREFMAG=10.500" in second["NOTES"]


def test_heliocentric_dates_and_other_delimiters(world):
    observation = Observation.objects.select_related("target", "site").get(pk=world.obs["ensemble"].pk)
    report = extended_format([observation], obscode="XYZ", software="x", delimiter="semicolon", date_type="HJD",
                             obstype="DSLR")
    header, [row] = read_extended(report.text)
    assert (header["DELIM"], header["DATE"], header["OBSTYPE"]) == (";", "HJD", "DSLR")
    site = world.a_site
    location = EarthLocation(lat=site.latitude * u.deg, lon=site.longitude * u.deg, height=site.elevation_m * u.m)
    time = Time(WHEN)
    expected = (time + time.light_travel_time(SkyCoord(56.97 * u.deg, 24.32 * u.deg), "heliocentric",
                                              location=location)).jd
    assert float(row["DATE"]) == pytest.approx(expected, abs=2e-5)
    assert abs(float(row["DATE"]) - time.jd) > 1e-3  # in December the light-time correction is minutes
    tabbed = extended_format([observation], obscode="XYZ", software="x", delimiter="tab")
    assert read_extended(tabbed.text)[0]["DELIM"] == "tab"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"obscode": "not a code"}, "observer code"), ({"obscode": "XYZ", "delimiter": "pipe"}, "delimiter"),
    ({"obscode": "XYZ", "date_type": "EXCEL"}, "JD or HJD"), ({"obscode": "XYZ", "obstype": "CMOS"}, "CCD"),
])
def test_bad_export_options(kwargs, message):
    with pytest.raises(ExportError, match=message):
        extended_format([], software="x", **kwargs)


def test_filter_names_map_to_aavso_codes():
    assert [aavso_filter(n) for n in ("V", "Rc", "Ic", "L", "Clear", "g'", "SG", "Ha", "B ", "R", None, "OIII")] == \
        ["V", "R", "I", "CV", "CV", "SG", "SG", "HA", "B", "R", None, None]


def test_api_exports_per_observer_and_per_campaign(world):
    client = person_client(world.a_manager)
    by_observer = client.get("/api/v1/exports/aavso", {"observer": "a_observer", "obscode": "xyz"})
    assert by_observer.status_code == 200, by_observer.content
    assert by_observer["Content-Type"].startswith("text/plain")
    assert (by_observer["X-DATAS-Rows"], by_observer["X-DATAS-Skipped"]) == ("2", "4")
    header, rows = read_extended(by_observer.content.decode())
    assert header["OBSCODE"] == "XYZ" and [r["STARID"] for r in rows] == ["V1 Tau", "V0001 Ori"]
    # The other site's observation belongs to another observer.
    assert str(world.others.observation_id) not in by_observer.content.decode()
    campaign = make_campaign(world.a, [world.var], starts_at=WHEN - timedelta(hours=1), ends_at=WHEN + timedelta(hours=1))
    by_campaign = client.get("/api/v1/exports/aavso", {"campaign": campaign.pk, "obscode": "XYZ", "date": "HJD"})
    _, rows = read_extended(by_campaign.content.decode())
    assert len(rows) == 2 and {r["STARID"] for r in rows} == {"V1 Tau"}  # both sites, campaign targets only
    as_csv = client.get("/api/v1/exports/aavso", {"campaign": campaign.pk, "output": "csv"})
    assert as_csv["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert len(table) == 5 and {r["target"] for r in table} == {"V1 Tau"}
    reasons = {r["observation_id"]: r["aavso_reportable"] for r in table}
    assert reasons[str(world.obs["ensemble"].observation_id)] == "yes"
    assert reasons[str(world.obs["halpha"].observation_id)] == "no: filter 'Ha 7nm' has no AAVSO code"
    ensemble_row = next(r for r in table if r["observation_id"] == str(world.obs["ensemble"].observation_id))
    assert (ensemble_row["magnitude"], ensemble_row["comparisons"], ensemble_row["check_magnitude"]) == (
        "10.4871", "3", "10.2130")


def test_api_export_refusals_and_isolation(world):
    client = person_client(world.a_manager)
    assert client.get("/api/v1/exports/aavso", {"observer": "a_observer"}).json()["obscode"]
    assert "either campaign" in str(client.get("/api/v1/exports/aavso", {"obscode": "XYZ"}).json())
    assert client.get("/api/v1/exports/aavso", {"observer": "b_observer", "obscode": "XYZ"}).status_code == 404
    assert client.get("/api/v1/exports/aavso", {"campaign": world.b_campaign.pk, "obscode": "XYZ"}).status_code == 404
    bad = client.get("/api/v1/exports/aavso", {"observer": "a_observer", "obscode": "no way"})
    assert bad.status_code == 400 and "observer code" in str(bad.json())
    assert agent_client(world.a_key).get("/api/v1/exports/aavso", {"observer": "a_observer"}).status_code == 403
    # A comparison star whose name holds the delimiter cannot be written: it is left out, not mangled.
    world.obs["single"].comparison_stars[0]["name"] = "105,2"
    world.obs["single"].save()
    response = client.get("/api/v1/exports/aavso", {"observer": "a_observer", "obscode": "XYZ"})
    assert response["X-DATAS-Rows"] == "1" and read_extended(response.content.decode())[1][0]["STARID"] == "V1 Tau"


def _posted(world, stars: list[dict]):
    body = {"observation_id": str(uuid.uuid4()), "target_id": world.var.pk, "observed_at": WHEN.isoformat(),
            "exposure_sec": 30, "filter": "V", "photometry": {"magnitude": 10.0, "error": 0.01, "method": "ensemble",
                                                              "comparison_stars": stars}}
    return agent_client(world.a_key).post("/api/v1/observations", body, format="json")


@pytest.mark.parametrize(("star", "field"), [
    ({"name": "C1", "catalog_mag": "ten"}, "catalog_mag"),
    ({"name": "C1", "instrumental_mag": {"v": 1}}, "instrumental_mag"),
    ({"name": "C1", "measured_mag": "Infinity"}, "measured_mag"),
    ({"name": "C1", "role": "target"}, "role"),
    ({"name": "C1", "used": "perhaps"}, "used"),
    ({"name": "a comparison name too long"}, "name"),
    ({"catalog_mag": 10.1}, "name"),
    ({"name": "C1", "catalogue_mag": 10.1}, "catalogue_mag"),
])
def test_agent_comparison_stars_are_typed_at_upload(world, star, field):
    response = _posted(world, [{"name": "C0", "catalog_mag": 9.9}, star])
    assert response.status_code == 400, response.content
    assert field in response.json()["photometry"]["comparison_stars"]["1"], response.json()
    assert not Observation.objects.filter(magnitude=10.0).exists()


def test_agent_comparison_stars_export_after_upload(world):
    stars = [{"name": "C1", "catalog_mag": "10.1", "instrumental_mag": "-7", "role": "comparison", "used": True,
              "catalog": CATALOG},
             {"name": "K1", "catalog_mag": 10.6, "instrumental_mag": -6.5, "measured_mag": 10.61, "role": "check"}]
    response = _posted(world, stars)
    assert response.status_code == 201, response.content
    stored = Observation.objects.get(observation_id=response.json()["observation_id"])
    assert stored.comparison_stars[0]["catalog_mag"] == 10.1 and stored.comparison_stars[0]["instrumental_mag"] == -7.0
    client = person_client(world.a_manager)
    report = client.get("/api/v1/exports/aavso", {"observer": "a_observer", "obscode": "XYZ"})
    assert report.status_code == 200, report.content
    _, rows = read_extended(report.content.decode())
    posted = next(r for r in rows if str(stored.observation_id) in r["NOTES"])
    assert (posted["CNAME"], posted["CMAG"], posted["KNAME"], posted["KMAG"]) == ("C1", "-7.000", "K1", "-6.500")
    assert "CREFMAG=10.100" in posted["NOTES"] and "KREFMAG=10.600" in posted["NOTES"]
    as_csv = client.get("/api/v1/exports/aavso", {"observer": "a_observer", "output": "csv"})
    assert as_csv.status_code == 200, as_csv.content
