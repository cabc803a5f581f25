"""Cataloguing a seeded share: kinds, sky positions from the WCS (not OBJECT), bad files,
re-runs, moved files, calibration chosen with reasons."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from observations.archive.catalogue import catalogue_paths
from observations.archive.models import ArchiveFile
from observations.frames import Frame
from targets.sky import angular_separation_deg
from tests.observations.archive.share import CRAB, FOV_DEG, panel_centres

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]


def _frames(slug="obs"):
    return {f.archive_file.path: f for f in Frame.objects.filter(network__slug=slug).select_related("archive_file")}


def test_catalogue_share_with_checked_astrometry(share, capsys):
    root, truth = share
    call_command("catalogue", str(root), "--network", "obs")
    out = capsys.readouterr().out
    assert "66 file(s)" in out and "63 new" in out and "3 bad" in out
    frames = _frames()
    assert {path: f.image_type for path, f in frames.items()} == truth.kinds
    assert frames and all(f.storage_key == "" for f in frames.values())  # catalogued in place, not copied
    for path in truth.bad:
        assert path in out
    assert "truncated" in out and "PNG image" in out and "time of observation" in out
    centres = panel_centres()
    methods = {}
    for path, panel in truth.panels.items():
        frame = frames[path]
        methods[frame.astrometry["method"]] = methods.get(frame.astrometry["method"], 0) + 1
        # The WCS centre, within a few pixels of the truth: never the OBJECT name's target.
        error_arcsec = angular_separation_deg(frame.ra_deg, frame.dec_deg, *truth.wcs_centres[path]) * 3600
        assert error_arcsec < 30, (path, frame.astrometry)
        assert frame.header["object_name"] in ("NGC 1952", "M45 Panel 1")
        lied_about = CRAB if frame.header["object_name"] == "NGC 1952" else centres["M45-P1"]
        if panel != "M45-P1":
            assert angular_separation_deg(frame.ra_deg, frame.dec_deg, *lied_about) > FOV_DEG / 2
    assert methods == {"header": 34, "propagated": 8}
    stale = next(f for p, f in frames.items() if truth.panels.get(p) == "M45-P3" and
                 f.astrometry.get("note", "").startswith("the header WCS was contradicted"))
    assert stale.wcs_source == "propagated"
    for path, (temperature, exposure) in truth.dark_of.items():
        calibration = frames[path].calibration
        darks = [frames[p] for p in calibration["dark"]["files"]]
        assert len(darks) == 3 and all(truth.dark_of.get(p) is None for p in calibration["dark"]["files"])
        assert {truth.temperatures[d.archive_file.path] for d in darks} == {temperature}
        assert {d.exposure_s for d in darks} == {exposure}
        flats = calibration["flat"]["files"]
        assert len(flats) == 3 and {truth.filters[p] for p in flats} == {truth.filters[path]}
        assert "within 1 C" in calibration["dark"]["reason"]


def test_rerun_skips_known_files_and_recognises_moves(share):
    root, truth = share
    network_slug = "obs"
    from observations.archive.catalogue import archive_network

    network = archive_network(network_slug)
    first = catalogue_paths([root], network, solve="never")
    assert first.new == 63 and len(first.bad) == 3
    again = catalogue_paths([root], network, solve="never")
    assert again.new == 0 and again.unchanged == 63
    light = next(p for p, k in truth.kinds.items() if k == "light")
    moved = root / "sorted" / "renamed.fits"
    moved.parent.mkdir()
    shutil.move(light, moved)
    shutil.copy(moved, root / "sorted" / "zz_copy.fits")
    third = catalogue_paths([root], network, solve="never")
    assert third.new == 0 and third.moved == [(light, str(moved))]
    assert [c[0] for c in third.copies] == [str(root / "sorted" / "zz_copy.fits")]
    assert ArchiveFile.objects.get(path=str(moved)).frame.original_name == light.split("/")[-1]
    assert Frame.objects.filter(network=network).count() == 63
    # New bytes under a known name: the old frame goes, the new one comes.
    old = ArchiveFile.objects.get(path=str(moved)).frame_id
    other = next(p for p, k in truth.kinds.items() if k == "light" and p != light)
    shutil.copy(other, root / "sorted" / "zz_copy.fits")
    overwritten = root / "sorted" / "renamed.fits"
    overwritten.write_bytes(Path(other).read_bytes()[:2880 * 3] + bytes(len(Path(other).read_bytes()) - 2880 * 3))
    fourth = catalogue_paths([root], network, solve="never")
    assert fourth.replaced == [str(overwritten)] and fourth.new == 1
    assert not Frame.objects.filter(pk=old).exists()
    assert ArchiveFile.objects.get(path=str(overwritten)).frame_id != old


def test_command_errors_are_messages(tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("catalogue", str(tmp_path / "missing"), "--network", "obs")
    with pytest.raises(CommandError, match="not a valid network slug"):
        call_command("catalogue", str(tmp_path), "--network", "Not A Slug")


def test_two_networks_catalogue_one_share_apart(share):
    from observations.archive.catalogue import archive_network

    root, _ = share
    first, second = archive_network("obs"), archive_network("club")
    catalogue_paths([root], first, solve="never")
    summary = catalogue_paths([root], second, solve="never")
    assert summary.new == 63
    for network in (first, second):
        frames = Frame.objects.filter(network=network)
        assert frames.count() == 63
        assert ArchiveFile.objects.filter(frame__in=frames, network=network).count() == 63
