"""Batch commands on worker processes give exactly what they give serially."""
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.cli.main import main
from datas_pipeline.errors import PipelineError
from datas_pipeline.parallel import default_jobs, map_in_order, resolve_jobs
from datas_pipeline.workflows import calibrate_folder, grade_folder

from tests.pipeline.test_cli_frames import raw_night, session_folder  # noqa: F401 (fixtures)
from tests.pipeline.test_cli_stacking import lights  # noqa: F401 (fixture)


def test_grading_on_two_workers_equals_serial(session_folder):  # noqa: F811
    serial, serial_failures = grade_folder(session_folder, jobs=1)
    parallel, parallel_failures = grade_folder(session_folder, jobs=2)
    assert parallel.as_dict() == serial.as_dict() and parallel_failures == serial_failures == []


def test_calibration_on_two_workers_writes_the_same_files(raw_night, tmp_path):  # noqa: F811
    _, _, folders = raw_night
    reports = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        reports[jobs] = calibrate_folder(folders["lights"], out, folders["bias"], folders["darks"], folders["flats"],
                                         jobs=jobs)
    assert len(reports[1]["lights"]) == len(reports[2]["lights"]) == 2
    for one, two in zip(reports[1]["lights"], reports[2]["lights"], strict=True):
        assert one["file"] == two["file"]
        for kind, choice in one["choices"].items():  # the same masters, from each run's own folder
            other = two["choices"][kind]
            assert Path(choice["master"]).name == Path(other["master"]).name and choice["notes"] == other["notes"]
        assert np.array_equal(fits.getdata(one["output"]), fits.getdata(two["output"]), equal_nan=True)


def test_registration_on_two_workers_writes_the_same_frames(lights, tmp_path, capsys):  # noqa: F811
    _, paths = lights
    records = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        assert main(["register", str(paths[0]), *map(str, paths), "--out", str(out), "--json", "-", "--quiet",
                     "--jobs", str(jobs)]) == 0
        records[jobs] = json.loads(capsys.readouterr().out)
    for one, two in zip(records[1], records[2], strict=True):
        assert {k: v for k, v in one.items() if k != "output"} == {k: v for k, v in two.items() if k != "output"}
        if one["accepted"]:
            assert np.array_equal(fits.getdata(one["output"]), fits.getdata(two["output"]), equal_nan=True)


def _fails_on_three(value: int) -> int:
    if value == 3:
        raise PipelineError("three is refused")
    return value * value


def test_map_in_order_keeps_order_and_raises_worker_errors(monkeypatch):
    assert list(map_in_order(_fails_on_three, [5, 1, 2], jobs=2)) == [25, 1, 4]
    with pytest.raises(PipelineError, match="three is refused"):
        list(map_in_order(_fails_on_three, [1, 3, 2], jobs=2))
    monkeypatch.setenv("DATAS_WORKERS", "3")
    assert default_jobs() == 3 and resolve_jobs(None) == 3 and resolve_jobs(1) == 1
    monkeypatch.setenv("DATAS_WORKERS", "many")
    with pytest.raises(PipelineError, match="DATAS_WORKERS"):
        default_jobs()
    with pytest.raises(PipelineError, match="at least 1"):
        resolve_jobs(0)


def test_workers_start_only_for_batches_that_repay_them(tmp_path, monkeypatch):
    from datas_pipeline import parallel

    monkeypatch.delenv("DATAS_WORKERS", raising=False)
    small = tmp_path / "small.fits"
    small.write_bytes(b"\0" * 2880)
    assert parallel.jobs_for_files([small], None) == 1
    assert parallel.jobs_for_files([small], 2) == 2
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 1000)
    assert parallel.jobs_for_files([small, tmp_path / "missing.fits"], None) == parallel.available_cores()
    monkeypatch.setenv("DATAS_WORKERS", "1")
    assert parallel.jobs_for_files([small], None) == 1


def test_stacking_on_two_threads_equals_one(lights, tmp_path):  # noqa: F811
    _, paths = lights
    masters = []
    for jobs in (1, 2):
        out = tmp_path / f"master{jobs}.fits"
        assert main(["stack", *map(str, paths), "--out", str(out), "--quiet", "--jobs", str(jobs)]) == 0
        masters.append(fits.getdata(out))
    assert np.array_equal(masters[0], masters[1], equal_nan=True)
