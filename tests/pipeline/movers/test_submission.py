"""MPC 80-column records checked column by column; ADES PSV and XML checked for the ADES structure."""
import xml.etree.ElementTree as ET

import pytest
from datas_pipeline.errors import PipelineError
from datas_pipeline.movers.submission import (
    Observatory,
    ades_psv,
    ades_xml,
    format_date,
    format_dec,
    format_ra,
    mpc_line,
    mpc_report,
)

SITE = Observatory(code="XXX", longitude_deg=-70.7375, latitude_deg=-30.2406, altitude_m=2207,
                   observers=("A. Observer",), telescope="0.4-m f/3.8 reflector + CCD", aperture_m=0.4,
                   zeropoint=25.0, band="G")
TRACKS = [
    {"kind": "mover", "positions": [
        {"time": "2026-12-06T01:00:25.000Z", "ra": 45.0068112, "dec": 20.0030361, "x": 1.0, "y": 2.0,
         "sigma_arcsec": 0.25, "snr": 12.0, "mag_inst": -7.5, "frame": 0},
        {"time": "2026-12-06T23:59:59.990Z", "ra": 359.9999999, "dec": -0.0000139, "x": 1.0, "y": 2.0,
         "sigma_arcsec": 0.31, "snr": 9.0, "mag_inst": -7.4, "frame": 1}]},
    {"kind": "streak", "positions": [{"time": "2026-12-06T01:10:00Z", "ra": 1.0, "dec": 2.0}]},
]


def test_sexagesimal_fields_never_round_to_sixty():
    assert format_ra(359.9999999) == "00 00 00.000"
    assert format_ra(45.0068112) == "03 00 01.635"
    assert format_dec(-0.0000139) == "-00 00 00.05"
    assert format_dec(20.0030361) == "+20 00 10.93"
    assert format_dec(-89.99999999) == "-90 00 00.00"
    from datetime import UTC, datetime
    assert format_date(datetime(2026, 12, 6, 23, 59, 59, 999900, tzinfo=UTC)) == "2026 12 07.000000"
    assert format_date(datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)) == "2026 12 06.500000"


def test_mpc_line_column_by_column():
    line = mpc_line("DAT0001", TRACKS[0]["positions"][0], SITE)
    assert len(line) == 80
    assert line[0:5] == "     "  # 1-5 packed number: none
    assert line[5:12] == "DAT0001"  # 6-12 temporary designation
    assert line[12] == " "  # 13 discovery asterisk
    assert line[13] == " "  # 14 note 1
    assert line[14] == "C"  # 15 note 2: CCD
    assert line[15:32] == "2026 12 06.041956"  # 16-32 date, 01:00:25 UTC
    assert line[32:44] == "03 00 01.635"  # 33-44 RA
    assert line[44:56] == "+20 00 10.93"  # 45-56 Dec
    assert line[56:65] == " " * 9  # 57-65 blank
    assert line[65:70] == "17.5 "  # 66-70 magnitude (-7.5 + 25.0)
    assert line[70] == "G"  # 71 band
    assert line[71:77] == " " * 6  # 72-77 blank
    assert line[77:80] == "XXX"  # 78-80 observatory code
    cmos = mpc_line("DAT0001", TRACKS[0]["positions"][0], Observatory(code="G96", detector="CMO"))
    assert cmos[14] == "B" and cmos[65:71] == " " * 6 and cmos[77:80] == "G96"


def test_mpc_report_header_for_xxx_and_only_movers():
    text = mpc_report(TRACKS, SITE)
    lines = text.splitlines()
    assert lines[0] == "COD XXX"
    assert lines[1] == "COM Long. 70 44 15 W, Lat. 30 14 26 S, Alt. 2207m, Google Earth"
    assert "OBS A. Observer" in lines and "TEL 0.4-m f/3.8 reflector + CCD" in lines
    records = [line for line in lines if len(line) == 80 and line[77:80] == "XXX"]
    assert len(records) == 2  # the streak is not an observation of a minor planet
    assert records[1][15:32] == "2026 12 07.000000"


def test_xxx_needs_coordinates_and_codes_are_three_characters():
    with pytest.raises(PipelineError, match="longitude and latitude"):
        mpc_report(TRACKS, Observatory(code="XXX"))
    with pytest.raises(PipelineError, match="three letters"):
        mpc_report(TRACKS, Observatory(code="G9"))


# The ADES optical element's children, in the order the ADES schema lists them (subset).
ADES_ORDER = ["permID", "provID", "artSat", "trkSub", "obsID", "trkID", "mode", "stn", "sys", "ctr", "pos1", "pos2",
              "pos3", "prog", "obsTime", "rmsTime", "ra", "dec", "raStar", "decStar", "deltaRA", "deltaDec", "dist",
              "pa", "rmsRA", "rmsDec", "rmsDist", "rmsPA", "rmsCorr", "astCat", "mag", "rmsMag", "band", "photCat",
              "photAp", "nucMag", "logSNR", "seeing", "exp", "rmsFit", "nStars", "ref", "disc", "subFmt", "subFrm",
              "precTime", "precRA", "precDec", "uncTime", "notes", "remarks"]
CONTEXT_ORDER = ["observatory", "submitter", "observers", "measurers", "telescope", "software", "coinvestigators",
                 "collaborators", "fundingSource", "comment"]


def test_ades_xml_structure():
    root = ET.fromstring(ades_xml(TRACKS, SITE))
    assert root.tag == "ades" and root.get("version") == "2022"
    blocks = root.findall("obsBlock")
    assert len(blocks) == 1 and [c.tag for c in blocks[0]] == ["obsContext", "obsData"]
    context = blocks[0].find("obsContext")
    tags = [c.tag for c in context]
    assert tags == sorted(tags, key=CONTEXT_ORDER.index)
    assert context.findtext("observatory/mpcCode") == "XXX"
    assert context.findtext("observers/name") == "A. Observer"
    assert context.findtext("telescope/aperture") == "0.4" and context.findtext("telescope/detector") == "CCD"
    assert "Long. -70.73750" in context.findtext("comment/line")
    optical = blocks[0].findall("obsData/optical")
    assert len(optical) == 2
    for obs in optical:
        tags = [c.tag for c in obs]
        assert tags == sorted(tags, key=ADES_ORDER.index), tags
        for required in ("trkSub", "mode", "stn", "obsTime", "ra", "dec", "astCat"):
            assert obs.findtext(required), required
        assert -90 <= float(obs.findtext("dec")) <= 90 and 0 <= float(obs.findtext("ra")) < 360
        assert float(obs.findtext("rmsRA")) > 0 and float(obs.findtext("rmsDec")) > 0
        assert obs.findtext("obsTime").endswith("Z")
    assert optical[0].findtext("obsTime") == "2026-12-06T01:00:25.000Z"
    assert optical[0].findtext("mag") == "17.50" and optical[0].findtext("band") == "G"
    assert optical[0].findtext("rmsRA") == "0.250"


def test_ades_psv_header_and_rows():
    lines = ades_psv(TRACKS, SITE).splitlines()
    assert lines[0] == "# version=2022"
    assert "# observatory" in lines and "! mpcCode XXX" in lines
    header_row = next(i for i, line in enumerate(lines) if not line.startswith(("#", "!")))
    fields = [f.strip() for f in lines[header_row].split("|")]
    assert fields[:6] == ["trkSub", "mode", "stn", "obsTime", "ra", "dec"]
    rows = [dict(zip(fields, (v.strip() for v in line.split("|")), strict=True)) for line in lines[header_row + 1:]]
    assert len(rows) == 2
    assert rows[0]["ra"] == "45.0068112" and rows[0]["dec"] == "+20.0030361" and rows[0]["stn"] == "XXX"
    assert rows[1]["rmsDec"] == "0.310"
    # Fixed-width columns: every row puts its separators in the same places.
    assert len({tuple(i for i, c in enumerate(line) if c == "|") for line in lines[header_row:]}) == 1
