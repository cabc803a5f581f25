"""export_packages on a catalogued share: one package per panel and target, the right
calibration in each, manifests, and a Siril script that runs to a stacked image."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest
from astropy.io import fits
from django.core.management import CommandError, call_command

from observations.archive.catalogue import archive_network, catalogue_paths
from targets.sky import angular_separation_deg
from tests.observations.archive.share import CRAB, FOV_DEG, panel_centres

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]


@pytest.fixture
def catalogued(share):
    root, truth = share
    catalogue_paths([root], archive_network("obs"), solve="missing", grade=False)
    return root, truth


def _packages(out):
    return {p.name: json.loads((p / "manifest.json").read_text()) for p in sorted(out.iterdir())}


def test_one_package_per_panel_and_target(catalogued, tmp_path, capsys):
    root, truth = catalogued
    out = tmp_path / "packages"
    call_command("export_packages", "--network", "obs", "--out", str(out))
    packages = _packages(out)
    assert len(packages) == 7
    centres = panel_centres()
    seen_panels = set()
    for name, manifest in packages.items():
        lights = manifest["lights"]
        panels = {truth.panels[row["original_path"]] for row in lights}
        assert len(panels) == 1, (name, panels)  # no package mixes panels
        panel = panels.pop()
        seen_panels.add(panel)
        assert len(lights) == 6 and {row["filter"] for row in lights} == {"L", "R"}
        cluster = manifest["cluster"]
        assert angular_separation_deg(cluster["ra_deg"], cluster["dec_deg"], *centres[panel]) < 0.1 * FOV_DEG
        folder = out / name
        for row in lights:
            assert (folder / row["file"]).is_symlink()
            assert (folder / row["file"]).resolve() == (root / row["original_path"]).resolve()
            temperature, exposure = truth.dark_of[row["original_path"]]
            darks = row["calibration"]["dark"]["files"]
            flats = row["calibration"]["flat"]["files"]
            assert len(darks) == 3 and len(flats) == 3
            for dark in darks:
                original = str((folder / dark).resolve())
                assert truth.temperatures[original] == temperature and truth.exposures[original] == exposure
            assert {truth.filters[str((folder / f).resolve())] for f in flats} == {row["filter"]}
            assert row["object_in_header"] in ("NGC 1952", "M45 Panel 1")
        rows = list(csv.DictReader((folder / "manifest.csv").open()))
        assert [r["file"] for r in rows] == [row["file"] for row in lights]
        assert re.search(r"preprocess light_l (-bias=\S+ )?-dark=\S+ -flat=", (folder / "process.ssf").read_text())
    assert seen_panels == set(centres)


def test_narrowed_by_cone_and_date(catalogued, tmp_path):
    out = tmp_path / "crab"
    call_command("export_packages", "--network", "obs", "--out", str(out), "--near", str(CRAB[0]), str(CRAB[1]), "1",
                 "--copy")
    (only,) = _packages(out).values()
    assert {row["original_path"].split("/")[-3] for row in only["lights"]} == {"M45_Panel_1"}  # the lying name
    assert not any((out / name).is_symlink() for name in (r["file"] for r in only["lights"]))
    with pytest.raises(CommandError, match="no catalogued lights"):
        call_command("export_packages", "--network", "obs", "--out", str(tmp_path / "x"), "--since", "2030-01-01")
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_packages", "--network", "obs", "--out", str(tmp_path / "x"), "--since", "yesterday")
    with pytest.raises(CommandError, match="no network"):
        call_command("export_packages", "--network", "nobody", "--out", str(tmp_path / "x"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("siril-cli") is None, reason="siril-cli is not installed")
@pytest.mark.parametrize("where", ["Crab", "M45-P1"])
def test_siril_script_runs_to_a_stacked_image(catalogued, tmp_path, where):
    """The Crab's darks hold the bias; the mosaic's are combined bias-subtracted (a bias of their
    temperature exists), so its lights are calibrated with bias, dark and flat."""
    out = tmp_path / "packages"
    ra, dec = panel_centres()[where]
    call_command("export_packages", "--network", "obs", "--out", str(out), "--near", str(ra), str(dec), "0.2")
    (folder,) = list(out.iterdir())
    script = (folder / "process.ssf").read_text()
    assert ("-bias=" in script.split("# 3 light(s) through L")[1]) == (where != "Crab")
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run(["siril-cli", "-d", str(folder), "-s", str(folder / "process.ssf")], capture_output=True,
                         text=True, timeout=300, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-3000:]
    assert "3 registered" in run.stdout
    for band in ("l", "r"):
        stacked = folder / f"result_{band}.fit"
        assert stacked.is_file()
        with fits.open(stacked) as hdul:
            assert hdul[0].data.shape == (256, 256)
            assert hdul[0].header.get("STACKCNT", 3) == 3


def test_frames_cone_answers_from_the_index(catalogued, capsys):
    call_command("frames_cone", "83.6", "22", "5", "--network", "obs", "--limit", "1000")
    assert "6 frame(s) within 5 deg of (83.6, 22)" in capsys.readouterr().out


def test_api_counts_subframes_in_a_cone(catalogued):
    from django.contrib.auth import get_user_model

    from tests.network.api_helpers import person_client

    client = person_client(get_user_model().objects.get(username="archive-obs"))
    response = client.get("/api/v1/frames", {"ra": 83.6, "dec": 22, "radius_deg": 5, "limit": 1000})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 6
    frame_id = response.json()["results"][0]["id"]
    missing = client.get(f"/api/v1/frames/{frame_id}/file")
    assert missing.status_code == 404 and "catalogued in place" in missing.json()["detail"]
    again = client.post(f"/api/v1/frames/{frame_id}/rerun")
    assert again.status_code == 409 and "manage.py catalogue" in again.json()["detail"]


def test_stacked_preview_per_filter(catalogued, tmp_path):
    from PIL import Image

    out = tmp_path / "packages"
    call_command("export_packages", "--network", "obs", "--out", str(out), "--near", str(CRAB[0]), str(CRAB[1]), "1",
                 "--preview")
    (folder,) = list(out.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [p["preview"] for p in manifest["previews"]] == ["preview_l.png", "preview_r.png"]
    # Three lights per filter, one of them taken after a meridian flip: all registered.
    assert all(p["frames"] == 3 and not p["refused"] for p in manifest["previews"])
    with Image.open(folder / "preview_l.png") as image:
        assert image.size == (256, 256)
