"""Each source against the real samples: fields, units, time scales, and bad packets refused with a reason."""
import datetime as dt
import json

import pytest

from targets.alerts.registry import source_for, sources
from targets.alerts.sources.base import BadPacket, SkippedPacket
from targets.alerts.sources.gcn import GcnJsonSource
from targets.alerts.sources.voevent import VoEventSource
from targets.alerts.sources.ztf import ZtfAvroSource


def test_registry_lists_every_source_by_name():
    assert list(sources()) == ["ztf", "gcn", "voevent", "gaia", "tns"]


def test_ztf_packet_has_detection_and_history(samples):
    data = (samples / "ztf_2019_01_10_739260766315010006.avro").read_bytes()
    [alert] = source_for(data).parse(data)
    assert (alert.source, alert.external_id, alert.event_id) == ("ZTF", "739260766315010006", "ZTF17aaacxxf")
    assert alert.ra_deg == pytest.approx(75.2007803) and alert.dec_deg == pytest.approx(35.3613954)
    assert alert.magnitude == pytest.approx(15.3711338)
    detections = [p for p in alert.photometry if p.magnitude is not None]
    limits = [p for p in alert.photometry if p.magnitude is None]
    assert len(alert.photometry) == 29 and len(detections) + len(limits) == 29
    assert all(p.limiting_mag is not None for p in limits)
    first = next(p for p in alert.photometry if p.point_id == "710243366315015036")
    assert (first.band, first.magnitude) == ("ztf-g", pytest.approx(19.1224995))
    # JD 2458493.7607... UTC of the sample's detection
    assert alert.event_time.date() == dt.date(2019, 1, 10)


def test_truncated_and_foreign_avro_are_refused(samples):
    data = (samples / "ztf_2019_01_10_739260766315010006.avro").read_bytes()
    with pytest.raises(BadPacket, match="Avro"):
        ZtfAvroSource().parse(data[: len(data) // 2])
    with pytest.raises(BadPacket, match="magic"):
        ZtfAvroSource().parse(b"not avro at all")


def test_gcn_notices_circle_ellipse_and_tense(samples):
    gbm = (samples / "gcn_kafka_fermi_gbm_trigger.flight1.example.json").read_bytes()
    [alert] = source_for(gbm).parse(gbm)
    assert alert.event_id == "Fermi:745121685" and alert.notice == "update"
    assert alert.error_radius_deg == 8.32 and alert.containment == 0.68
    assert alert.event_time == dt.datetime(2024, 8, 24, 2, 14, 40, 430000, tzinfo=dt.UTC)
    maxi = (samples / "gcn_kafka_maxi_gsc.unknown.ellipse.example.json").read_bytes()
    [ellipse] = GcnJsonSource().parse(maxi)
    assert ellipse.ellipse == (0.22, 0.19, 153.0) and ellipse.event_name == "GRB 230220A"
    test_notice = json.loads(gbm) | {"alert_tense": "test"}
    with pytest.raises(SkippedPacket, match="alert_tense"):
        GcnJsonSource().parse(json.dumps(test_notice).encode())
    with pytest.raises(BadPacket, match="malformed JSON"):
        GcnJsonSource().parse(gbm[:100])
    with pytest.raises(BadPacket, match=r"\$schema"):
        GcnJsonSource().parse(json.dumps(json.loads(gbm) | {"$schema": "https://example.org/x.json"}).encode())


def test_gaia_voevent_time_is_converted_from_tdb(samples):
    data = (samples / "voevent_Gaia16aac.xml").read_bytes()
    [alert] = source_for(data).parse(data)
    assert alert.external_id == "ivo://gaia.cam.uk/alerts#Gaia16aac" and alert.source == "Gaia"
    # 07:52:27 TDB is 07:51:18.8 UTC: 69.18 s of TDB-UTC in 2016, not the raw string
    assert alert.event_time.replace(microsecond=0) == dt.datetime(2016, 1, 16, 7, 51, 18, tzinfo=dt.UTC)
    assert alert.ra_deg == pytest.approx(73.29423) and alert.error_radius_deg == pytest.approx(2e-5)


def test_voevent_test_role_is_ignored_and_bad_xml_refused(samples):
    data = (samples / "voevent_ASASSN_2016fvf.xml").read_bytes()
    with pytest.raises(SkippedPacket, match="role='test'"):
        VoEventSource().parse(data.replace(b'role="observation"', b'role="test"'))
    with pytest.raises(BadPacket, match="malformed"):
        VoEventSource().parse(data[:500])


def test_csv_and_tns_json(samples):
    gaia = (samples / "gaia_alerts_head.csv").read_bytes()
    alerts = source_for(gaia).parse(gaia)
    assert len(alerts) == 15 and alerts[0].external_id == "Gaia22cxt" and alerts[0].aliases == ["AT2022owc"]
    assert alerts[2].classification == {"SN Ia": 1.0} and alerts[1].classification == {}
    tns_csv = (samples / "tns_public_objects_sample.csv").read_bytes()
    rows = source_for(tns_csv).parse(tns_csv)
    assert [(a.event_name, a.ra_deg, a.dec_deg) for a in rows] == [("SN 2024xyz", 180.0, -30.0), ("AT 2024aaa", 10.0, 10.0)]
    assert rows[1].aliases == ["ZTF24aaaaaaa"]
    tns_json = (samples / "tns_get_object_examples.json").read_bytes()
    objects = source_for(tns_json).parse(tns_json)  # 2020ubb has no position: logged and left out
    assert [(a.event_id, a.ra_deg, a.dec_deg) for a in objects] == [("2004eo", 308.22579, 9.92853)]
