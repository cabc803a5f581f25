"""A target list with exposure goals per filter -> Ekos (and N.I.N.A.) tasking for exactly the
panels and filters short of their goal."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from observations.archive.catalogue import archive_network, catalogue_paths
from observations.frames import Frame
from scheduling.archive_coverage import GoalsError, read_goals_csv
from scheduling.exports.ekos import read_scheduler_list, read_sequence
from targets.sky import angular_separation_deg
from tests.observations.archive.share import panel_centres

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

# 3 x 300 s = 0.25 h per panel and filter are on the share; 3 x 120 s = 0.1 h for the Crab.
GOALS = """name,ra,dec,filter,exposure_s,goal_hours,radius_deg
M45 mosaic,03:47:00,+24:07:12,L,300,0.25,1.2
M45 mosaic,03:47:00,+24:07:12,R,300,0.25,1.2
Crab,83.63,22.01,L,120,0.2,0.5
Crab,83.63,22.01,R,120,0.1,0.5
Horsehead,85.25,-2.46,Ha,600,1,0.5
"""


def test_tasking_for_exactly_the_short_panels_and_filters(share, tmp_path, capsys):
    root, truth = share
    network = archive_network("obs")
    catalogue_paths([root], network, solve="missing", grade=False)
    # One R frame of the mosaic's north-east panel was clouded out: that panel is short in R.
    centres = panel_centres()
    north_east = max((p for p in centres if p.startswith("M45")), key=lambda p: (centres[p][1], centres[p][0]))
    cloudy = next(p for p, panel in truth.panels.items() if panel == north_east and truth.filters[p] == "R")
    Frame.objects.filter(archive_file__path=cloudy).update(accepted=False)
    goals = tmp_path / "targets.csv"
    goals.write_text(GOALS)
    out = tmp_path / "tasking"
    call_command("archive_tasking", "--network", "obs", "--goals", str(goals), "--import", "--out", str(tmp_path / "x"))
    assert "3 target(s) created" in capsys.readouterr().out
    call_command("archive_tasking", "--network", "obs", "--out", str(out))  # from the stored goals
    printed = capsys.readouterr().out
    assert "M45 mosaic P1" in printed and "M45 mosaic P6" in printed
    jobs = read_scheduler_list((out / "tasking.esl").read_text())
    by_name = {job["name"]: job for job in jobs}
    (short_panel,) = [name for name in by_name if name.startswith("M45")]  # one panel of six, one filter
    assert set(by_name) == {short_panel, "Crab", "Horsehead"}
    east = by_name[short_panel]
    assert angular_separation_deg(east["ra_hours"] * 15, east["dec_deg"], *centres[north_east]) < 0.05
    steps = {job["name"]: [(s["filter"], s["exposure_sec"], s["count"]) for s in read_sequence(
        (out / job["sequence"].split("/")[-1]).read_text())] for job in jobs}
    assert steps == {short_panel: [("R", 300.0, 1)], "Crab": [("L", 120.0, 3)], "Horsehead": [("Ha", 600.0, 6)]}
    crab = by_name["Crab"]
    assert angular_separation_deg(crab["ra_hours"] * 15, crab["dec_deg"], *centres["Crab"]) < 0.05


def test_nina_through_the_existing_exporter(share, tmp_path, shared_data):
    root, _ = share
    catalogue_paths([root], archive_network("obs"), solve="missing", grade=False)
    goals = tmp_path / "targets.csv"
    goals.write_text(GOALS)
    template = shared_data / "nina" / "phtnnz_astro_Target_L_only.template.json"
    out = tmp_path / "nina"
    call_command("archive_tasking", "--network", "obs", "--goals", str(goals), "--out", str(out),
                 "--format", "nina", "--template", str(template))
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".json"]  # Crab and Horsehead


def test_bad_target_lists_are_messages(tmp_path):
    with pytest.raises(GoalsError, match="goal_hours or goal_s"):
        read_goals_csv("name,ra,dec,filter,exposure_s\nX,1,2,L,60\n")
    with pytest.raises(GoalsError, match="line 2: .*off the sky"):
        read_goals_csv("name,ra,dec,filter,exposure_s,goal_hours\nX,1,95,L,60,1\n")
    with pytest.raises(GoalsError, match="line 3: exposure_s = 'abc'"):
        read_goals_csv("name,ra,dec,filter,exposure_s,goal_hours\nX,1,2,L,60,1\nX,1,2,R,abc,1\n")
    archive_network("obs")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ra\n")
    with pytest.raises(CommandError, match="lacks the column"):
        call_command("archive_tasking", "--network", "obs", "--goals", str(bad), "--out", str(tmp_path / "o"))
    with pytest.raises(CommandError, match="no imported goals"):
        call_command("archive_tasking", "--network", "obs", "--out", str(tmp_path / "o"))
