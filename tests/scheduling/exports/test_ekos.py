"""KStars/Ekos files: ours parse like KStars' own, RA in hours, the wheel's filter names, whole seconds."""
import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from datas_pipeline.sky import ephemeris as eph

from scheduling.exports import tasking_files
from scheduling.exports.ekos import (
    EkosOptions,
    ekos_files,
    read_scheduler_list,
    read_sequence,
    scheduler_list_xml,
    sequence_xml,
    write_ekos,
)
from scheduling.night_plan import JobStep, TaskingError, TaskingJob

START = float(eph.to_unix(dt.datetime(2026, 1, 12, 19, 30, tzinfo=dt.UTC)))
WHEEL = ["Luminance", "Red", "Green", "Blue", "H-Alpha", "OIII"]
JOBS = [
    TaskingJob("SN 2024xyz & host", 180.0, -30.0, (JobStep("Red", 120, 5), JobStep("Green", 60.5, 5)), START,
               START + 1800, 30.0, 20.0, group="campaign-42"),
    TaskingJob("M 42", 83.8221, -5.3911, (JobStep("H-Alpha", 300, 12),), START + 1800, START + 5400, 25.0),
]
# Tags SchedulerUtils::createJob parses in a <Job>, and SequenceJob::loadFrom in a capture job.
ESL_JOB_TAGS = {"JobType", "Name", "Group", "OpticalTrain", "Coordinates", "Sequence", "FITS", "PositionAngle",
                "StartupCondition", "Constraints", "CompletionCondition", "Steps"}
ESQ_JOB_TAGS = {"Exposure", "Format", "Encoding", "Binning", "Frame", "Temperature", "Filter", "Type", "Count",
                "Delay", "TargetName", "GuideDitherPerJob", "FITSDirectory", "PlaceholderFormat", "PlaceholderSuffix",
                "UploadMode", "Properties", "Calibration"}


@pytest.fixture(scope="module")
def kstars_esl(shared_data):
    return (shared_data / "ekos" / "kstars_Tests_scheduler_complex_job_complex_jobs.esl").read_text()


@pytest.fixture(scope="module")
def kstars_esq(shared_data):
    return (shared_data / "ekos" / "kstars_Tests_scheduler_3x30s_Red.esq").read_text()


def test_the_readers_read_kstars_own_files(kstars_esl, kstars_esq):
    jobs = read_scheduler_list(kstars_esl)
    assert len(jobs) == 3 and {j["name"] for j in jobs} == {"Eastern Veil"}
    assert jobs[0]["ra_hours"] == pytest.approx(20.9453) and jobs[0]["dec_deg"] == pytest.approx(31.5906)
    assert jobs[0]["constraints"] == {"MinimumAltitude": "35", "EnforceTwilight": None}
    assert jobs[1]["completion"] == ("Repeat", "2")
    assert jobs[0]["steps"] == ["Track", "Focus", "Align", "Guide"]
    (capture,) = read_sequence(kstars_esq)
    assert capture == {"exposure_sec": 30.0, "filter": "Red", "type": "Light", "count": 3, "delay_s": 0,
                       "binning": (1, 1)}


def test_scheduler_list_is_well_formed_with_ra_in_hours(kstars_esl):
    files = ekos_files(JOBS, WHEEL, EkosOptions(sequence_dir="/home/observer/tasking", profile="Simulators"))
    assert sorted(files) == ["01_SN_2024xyz_host.esq", "02_M_42.esq", "tasking.esl"]
    root = ET.fromstring(files["tasking.esl"])  # well-formed
    assert root.tag == "SchedulerList" and root.findtext("Profile") == "Simulators"
    jobs = read_scheduler_list(files["tasking.esl"])
    assert [j["name"] for j in jobs] == ["SN 2024xyz & host", "M 42"]  # escaped, then read back
    assert jobs[0]["ra_hours"] == pytest.approx(12.0) and jobs[1]["ra_hours"] == pytest.approx(83.8221 / 15)
    assert jobs[0]["dec_deg"] == pytest.approx(-30.0)
    assert jobs[0]["sequence"] == "/home/observer/tasking/01_SN_2024xyz_host.esq"
    assert jobs[0]["startup"] == ("At", "2026-01-12T19:30:00Z")
    assert jobs[0]["completion"] == ("Sequence", None)
    assert jobs[0]["constraints"] == {"MinimumAltitude": "30", "MoonSeparation": "20", "EnforceTwilight": None}
    assert "MoonSeparation" not in jobs[1]["constraints"]
    assert jobs[0]["group"] == "campaign-42" and jobs[0]["lead"]
    # Only tags KStars parses, in the order KStars' own files use.
    real_order = [c.tag for c in ET.fromstring(kstars_esl).find("Job") if c.tag != "Priority"]
    for job in root.findall("Job"):
        tags = [c.tag for c in job]
        assert set(tags) <= ESL_JOB_TAGS
        shared = [t for t in tags if t in real_order]
        assert shared == [t for t in real_order if t in shared]
    top = [c.tag for c in root]
    assert top[0] == "Profile" and top[-3:] == ["ErrorHandlingStrategy", "StartupProcedure", "ShutdownProcedure"]
    assert "<!--" not in files["tasking.esl"]


def test_sequences_use_the_wheel_names_and_whole_seconds(kstars_esq):
    files = ekos_files(JOBS, WHEEL, EkosOptions(delay_s=2, temperature_c=-10, gain=120, offset=30))
    captures = read_sequence(files["01_SN_2024xyz_host.esq"])
    assert [(c["filter"], c["exposure_sec"], c["count"], c["delay_s"], c["type"]) for c in captures] == [
        ("Red", 120.0, 5, 2, "Light"), ("Green", 60.5, 5, 2, "Light")]
    root = ET.fromstring(files["01_SN_2024xyz_host.esq"])
    assert float(root.get("version")) >= 2.0
    for job in root.findall("Job"):
        assert {c.tag for c in job} <= ESQ_JOB_TAGS
        assert job.findtext("Delay").isdigit() and job.findtext("Count").isdigit()
        assert "," not in job.findtext("Exposure")
        assert job.find("Properties/PropertyVector/OneElement[@name='GAIN']").text == "120"
    real_tags = {c.tag for c in ET.fromstring(kstars_esq).find("Job")}
    ours = {c.tag for c in root.find("Job")}
    assert {"Exposure", "Binning", "Frame", "Filter", "Type", "Count", "Delay", "FITSDirectory",
            "UploadMode", "Properties", "Calibration", "Temperature"} <= real_tags & ours


def test_a_filter_the_wheel_does_not_name_is_refused():
    bad = TaskingJob("x", 10, 10, (JobStep("R", 60, 1),), START, START + 600, 30)
    with pytest.raises(TaskingError, match="slot 1"):
        sequence_xml(bad, WHEEL, EkosOptions())


@pytest.mark.parametrize("kwargs, message", [
    ({"sequence_dir": "tasking"}, "absolute"),
    ({"sequence_dir": "/home/a&b"}, "must not contain"),
    ({"startup": "whenever"}, "startup"),
    ({"steps": ("Track", "Dance")}, "steps"),
    ({"error_strategy": 7}, "error_strategy"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(TaskingError, match=message):
        EkosOptions(**kwargs)


def test_asap_and_completion_at_and_windows_paths():
    esl = scheduler_list_xml(JOBS[:1], ["C:\\Users\\obs\\tasking\\01_a.esq"],
                             EkosOptions(sequence_dir="C:\\Users\\obs\\tasking", startup="asap", completion="at"))
    (job,) = read_scheduler_list(esl)
    assert job["startup"] == ("ASAP", None)
    assert job["completion"] == ("At", "2026-01-12T20:00:00Z")
    files = ekos_files(JOBS[:1], WHEEL, EkosOptions(sequence_dir="C:\\Users\\obs\\tasking"))
    assert read_scheduler_list(files["tasking.esl"])[0]["sequence"] == "C:\\Users\\obs\\tasking\\01_SN_2024xyz_host.esq"


def test_write_ekos_and_the_format_registry(tmp_path):
    paths = write_ekos(JOBS, WHEEL, tmp_path / "out", EkosOptions())
    assert [p.name for p in paths][-1] == "tasking.esl" and all(p.exists() for p in paths)
    assert set(tasking_files("ekos", JOBS, WHEEL)) == {p.name for p in paths}
    assert list(tasking_files("csv", JOBS, WHEEL)) == ["tasking.csv"]
    with pytest.raises(TaskingError, match="unknown tasking format"):
        tasking_files("acp", JOBS, WHEEL)
    with pytest.raises(TaskingError, match="needs a template"):
        tasking_files("nina", JOBS, WHEEL)
