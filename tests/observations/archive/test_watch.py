"""Following a share: files are catalogued once quiet, the daily re-scan catalogues new files."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from observations.archive.models import ArchiveShare
from observations.archive.watch import QuietFiles, watch_share


def test_quiet_period_waits_for_half_written_files(tmp_path):
    path = tmp_path / "light_001.fits"
    path.write_bytes(b"x" * 100)
    quiet = QuietFiles(quiet_s=5.0)
    quiet.touch(str(path), now=100.0)
    assert quiet.ready(now=103.0) == []  # still inside the quiet period
    path.write_bytes(b"x" * 200)  # grew without an event (a network share)
    assert quiet.ready(now=106.0) == []
    assert quiet.ready(now=112.0) == [path]
    assert quiet.ready(now=120.0) == []  # handed out once


def test_watchdog_reports_a_new_frame_after_the_quiet_period(tmp_path):
    seen: list = []
    stop = threading.Event()
    worker = threading.Thread(target=watch_share, args=([tmp_path], seen.extend),
                              kwargs={"quiet_s": 0.3, "poll_s": 0.1, "stop": stop}, daemon=True)
    worker.start()
    time.sleep(0.3)
    (tmp_path / "night").mkdir()
    (tmp_path / "night" / "m31_001.FIT").write_bytes(b"x" * 10)
    (tmp_path / "night" / "notes.txt").write_text("ignored")
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=10)
    assert [p.name for p in seen] == ["m31_001.FIT"]


@pytest.mark.django_db
@pytest.mark.postgres_only
def test_daily_rescan_catalogues_configured_shares(share):
    from django_celery_beat.models import PeriodicTask

    from observations.archive.catalogue import archive_network, archive_site
    from observations.archive.tasks import RESCAN_TASK, rescan_archive_shares

    entry = PeriodicTask.objects.get(task=RESCAN_TASK)
    assert (entry.crontab.hour, entry.crontab.minute) == ("6", "0")
    root, truth = share
    network = archive_network("obs")
    site = archive_site(network, "Backyard")
    bias_folder = root / "calibration" / "Bias"
    shutil.move(str(bias_folder), str(root.parent / "later"))
    ArchiveShare.objects.create(network=network, site=site, path=str(root), solve="never")
    first = rescan_archive_shares()[str(root)]
    assert first["new"] == 60
    shutil.move(str(root.parent / "later"), str(bias_folder))
    second = rescan_archive_shares()[str(root)]
    assert second["new"] == 3 and second["unchanged"] == 60 and second["kinds"] == {"bias": 3}
    assert ArchiveShare.objects.get(path=str(root)).last_summary["new"] == 3
