"""A real Celery worker against Redis and PostgreSQL, killed with SIGKILL in the middle of a task.

The task it was running is handed to a second worker once its visibility timeout passes; the
frame ends done with exactly one set of products.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from network.celery import app
from observations.frames import Frame
from observations.models import Observation
from observations.states import STAGES
from observations.tasks import frame_chain
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world, make_target
from tests.observations.conftest import stored_files
from tests.observations.sky_frames import TARGET, TARGET_MAG, sky_frame

pytestmark = [pytest.mark.postgres_only, pytest.mark.redis, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A `celery worker` process on its own queue, with the test database and frame storage."""

    def __init__(self, queue: str, media_root: Path, log: Path) -> None:
        url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
        env = os.environ | {"DATABASE_URL": url, "REDIS_URL": django_settings.REDIS_URL,
                            "MEDIA_ROOT": str(media_root), "DATAS_SCRATCH_DIR": str(media_root / "scratch"),
                            "DATAS_TASK_VISIBILITY_TIMEOUT": "3", "DATAS_TASK_RESTORE_INTERVAL": "1",
                            "DJANGO_SETTINGS_MODULE": "network.settings", "LOG_LEVEL": "WARNING"}
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "network", "worker", "--pool=solo", "-Q", queue,
                 "-n", f"{queue}-{uuid.uuid4().hex[:6]}@localhost", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel=INFO"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def children(self) -> list[int]:
        """Processes this worker started (e.g. solve-field), found through /proc."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; then the solver it left running."""
        children = self.children()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in children:  # solve-field runs in its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, timeout: float, what: str, worker_log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{worker_log.read_text()[-3000:]}")


def test_a_killed_workers_task_runs_again_with_no_duplicates(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "frames": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "frames")}}}
    settings.DATAS_SCRATCH_DIR = tmp_path / "scratch"
    settings.DATAS_PIPELINE_ON_UPLOAD = False
    world = build_world()
    target = make_target(world.a, name="V1 Tau", ra_deg=TARGET[0], dec_deg=TARGET[1], magnitude=TARGET_MAG)
    response = agent_client(world.a_key).post(
        "/api/v1/frames", {"file": SimpleUploadedFile("v1tau.fits", sky_frame(0, seed=9).data)}, format="multipart")
    assert response.status_code == 201, response.content
    frame_id = response.json()["id"]
    queue = f"pipeline-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "workers.log"
    first = Worker(queue, tmp_path, log)
    second = None
    try:
        frame_chain(frame_id, queue=queue).apply_async()
        # The first solve of a pointing runs solve-field for about a second: kill the worker then.
        wait_for(lambda: Frame.objects.filter(pk=frame_id, active_stage="solve").exists(), 90,
                 "the first worker to start solving", log)
        first.kill()
        frame = Frame.objects.get(pk=frame_id)
        assert (frame.state, frame.active_stage) == ("header_read", "solve")
        second = Worker(queue, tmp_path, log)
        wait_for(lambda: Frame.objects.filter(pk=frame_id, state__in=["done", "failed"]).exists(), 120,
                 "the second worker to finish the frame", log)
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    frame = Frame.objects.get(pk=frame_id)
    assert frame.state == "done", frame.state_reason
    assert frame.attempts == len(STAGES) + 1  # the solve stage started twice, every other stage once
    assert frame.wcs_source == "solved" and frame.photometry["magnitude"] == pytest.approx(TARGET_MAG, abs=0.05)
    assert Observation.objects.filter(target=target).count() == 1
    assert frame.observation.target == target
    assert len(stored_files(tmp_path / "frames")) == 3  # the frame, its preview and its thumbnail
    target.refresh_from_db()
    assert target.total_observations == 1
