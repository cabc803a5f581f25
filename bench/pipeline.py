"""The frame pipeline end to end: synthetic 2k x 2k frames through the Celery chain.

200 frames (default) of a few pointings at real Tycho-2 skies, each pointing a dithered
sequence, are ingested (checked and stored as an upload is) and run through the whole chain
(header, solve, grade, calibration, photometry, observation, products) by real Celery worker
processes (``--pool=solo``, one thread each) against PostgreSQL and Redis: first with one
worker, then again with two. Printed: frames per minute, the share of time per stage, the
speed-up from the second worker, and the goal (60 frames per minute per core for everything
but the first solve of each pointing). Peer for the solve stage: solve-field (hinted) on a
frame, which is what every frame would cost without WCS propagation.

Needs PostgreSQL and Redis (``eval "$(bash scripts/services.sh)"``); uses the database at
DATABASE_URL (migrated if needed) and removes what it created. Frames go to a temporary
directory. Run: python bench/pipeline.py [--frames 200] [--pointings 4] [--size 2048]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from _common import ROOT, compare, header, tool_version

FIELDS = [(56.75, 24.12), (83.8, -5.4), (305.0, 40.0), (130.1, 19.7), (10.7, 41.3), (280.0, 38.0)]
SCALE_ARCSEC = 3.5
DITHER_PX = 24
GOAL_PER_CORE = 60.0
# One thread per worker process, so "per worker" means "per core".
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def setup_django(media_root: Path) -> None:
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ["DATAS_SCRATCH_DIR"] = str(media_root / "scratch")
    os.environ["DATAS_PIPELINE_ON_UPLOAD"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("bench/pipeline.py needs PostgreSQL and Redis: eval \"$(bash scripts/services.sh)\" first")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def render_pointings(args, folder: Path) -> list[dict]:
    """FITS files of each pointing's dithered sequence; the truth per pointing."""
    from astropy.io import fits
    from datas_pipeline.catalog.reference import tycho2_cone
    from datas_pipeline.synthetic.fields import catalog_stars, expose, make_wcs, sky_image

    size, margin = args.size, DITHER_PX
    canvas = (size + 2 * margin, size + 2 * margin)
    per_pointing = args.frames // args.pointings
    rng = np.random.default_rng(7)
    start = datetime(2025, 12, 1, 0, 0, tzinfo=UTC)
    pointings = []
    for p, (ra, dec) in enumerate(FIELDS[:args.pointings]):
        truth = make_wcs(ra, dec, SCALE_ARCSEC, canvas, rotation_deg=10.0 * p)
        catalog = tycho2_cone(ra, dec, 1.6 * size * SCALE_ARCSEC / 3600.0)
        light = sky_image(canvas, catalog_stars(truth, canvas, catalog, flux_at_mag0=2e8), sky=150.0, fwhm=2.8)
        near = np.hypot((catalog["ra"] - ra) * np.cos(np.radians(dec)), catalog["dec"] - dec)
        pick = np.flatnonzero((catalog["mag"] > 9.0) & (catalog["mag"] < 10.5) & (near < 0.2))[0]
        target = {"name": f"Bench star {p + 1}", "ra": float(catalog["ra"][pick]), "dec": float(catalog["dec"][pick]),
                  "mag": float(catalog["mag"][pick])}
        files = []
        for i in range(per_pointing):
            ox, oy = (int(v) for v in rng.integers(0, 2 * margin + 1, 2))
            data = expose(light[oy:oy + size, ox:ox + size], rng, sky=0.0, read_noise=5.0) + 300.0
            when = start + timedelta(seconds=60 * (p * per_pointing + i))
            head = fits.Header({"DATE-OBS": when.strftime("%Y-%m-%dT%H:%M:%S"), "EXPTIME": 30.0,
                                "IMAGETYP": "Light Frame", "FILTER": "V", "OBJECT": target["name"],
                                "RA": ra + 0.05, "DEC": dec - 0.05, "INSTRUME": "Bench CCD", "XBINNING": 1,
                                "YBINNING": 1, "GAIN": 1.0, "EGAIN": 1.0, "RDNOISE": 5.0, "OFFSET": 300,
                                "CCD-TEMP": -10.0, "XPIXSZ": 9.0, "FOCALLEN": 206.264806 * 9.0 / SCALE_ARCSEC,
                                "SITELAT": 28.76, "SITELONG": -17.88, "SATURATE": 60000.0})
            path = folder / f"p{p}_{i:03d}.fits"
            fits.PrimaryHDU(np.clip(np.rint(data), 0, 65535).astype(np.uint16), header=head).writeto(path)
            files.append(path)
        pointings.append({"target": target, "files": files})
        print(f"   pointing {p + 1}: ({ra}, {dec}), {len(catalog)} Tycho-2 stars, target VT {target['mag']:.2f}, "
              f"{per_pointing} frames")
    return pointings


def ingest(pointings: list[dict]) -> tuple[list[int], float, object]:
    """Store every file as an upload would (checked, hashed, stored); returns frame ids."""
    from network.models import Membership, Network, Role
    from observations.services import Uploader
    from observations.uploads import Destination, store_frame_file
    from sites.models import Site
    from sites.services import issue_site_key
    from targets.models import Target

    tag = uuid.uuid4().hex[:8]
    network = Network.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username=f"bench-{tag}", password=None)
    Membership.objects.create(user=owner, network=network, role=Role.OWNER)
    site = Site.objects.create(network=network, owner=owner, name="Bench site", latitude=28.76, longitude=-17.88,
                               elevation_m=2300, filters=["V"], focal_length_mm=206.264806 * 9.0 / SCALE_ARCSEC,
                               pixel_size_um=9.0)
    uploader = Uploader(site_key=issue_site_key(site).key)
    ids, started = [], time.perf_counter()
    for pointing in pointings:
        t = pointing["target"]
        target = Target.objects.create(network=network, name=t["name"], ra_deg=t["ra"], dec_deg=t["dec"],
                                       magnitude=t["mag"])
        for path in pointing["files"]:
            with open(path, "rb") as handle:
                stored = store_frame_file(handle, path.stat().st_size, Destination(site, target), uploader,
                                          original_name=path.name, local_path=path)
            ids.append(stored.frame.pk)
    return ids, time.perf_counter() - started, network


class Workers:
    def __init__(self, count: int, queue: str, media_root: Path, log: Path) -> None:
        env = os.environ | SINGLE_THREAD | {"LOG_LEVEL": "WARNING"}
        self.processes = []
        with open(log, "ab") as out:
            for n in range(count):
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "network", "worker", "--pool=solo", "-Q", queue,
                     "-n", f"bench{n}-{queue}@localhost", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "--loglevel=WARNING"], cwd=ROOT, env=env, stdout=out,
                    stderr=subprocess.STDOUT))

    def cpu_seconds(self) -> float:
        """CPU time of the workers and the solvers they ran (utime, stime and waited children)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for process in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / ticks
        return total

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run(ids: list[int], workers: int, media_root: Path, log: Path) -> dict:
    from network.celery import app
    from observations.frames import Frame
    from observations.states import TERMINAL
    from observations.tasks import frame_chain

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    pool = Workers(workers, queue, media_root, log)
    try:
        time.sleep(8)  # let the workers import Django, astropy and the catalogue reader first
        load = os.getloadavg()[0]
        cpu_before = pool.cpu_seconds()
        started = time.perf_counter()
        for frame_id in ids:
            frame_chain(frame_id, queue=queue).apply_async()
        while Frame.objects.filter(pk__in=ids).exclude(state__in=list(TERMINAL)).exists():
            time.sleep(0.5)
        wall = time.perf_counter() - started
        cpu = pool.cpu_seconds() - cpu_before
    finally:
        pool.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    frames = list(Frame.objects.filter(pk__in=ids))
    return {"workers": workers, "wall": wall, "frames": frames, "cpu": cpu, "load": load}


def report(result: dict) -> dict:
    frames, wall, workers = result["frames"], result["wall"], result["workers"]
    done = [f for f in frames if f.state == "done"]
    stages: dict[str, float] = {}
    for frame in frames:
        for name, seconds in frame.timings.items():
            stages[name] = stages.get(name, 0.0) + seconds
    first = [f.timings.get("solve", 0.0) for f in frames if f.wcs_source == "solved"]
    busy = workers * wall
    effective = wall - sum(first) / workers
    per_core = (len(done) - len(first)) / effective * 60.0 / workers
    print(f"-- {workers} worker process(es): {len(done)}/{len(frames)} frames done in {wall:.1f} s = "
          f"{len(done) / wall * 60:.1f} frames/min ({len(frames) - len(done)} failed); machine load "
          f"{result['load']:.1f} at the start")
    cpu_first = sum(first)  # a solve's CPU is mostly solve-field's, about its wall time
    per_cpu_minute = (len(done) - len(first)) / max(result["cpu"] - cpu_first, 1e-9) * 60.0
    print(f"   worker CPU {result['cpu']:.1f} s = {1000 * result['cpu'] / len(frames):.0f} ms/frame; "
          f"{per_cpu_minute:.1f} frames per CPU-minute without the first solves (what one free core does)")
    from observations.states import STAGES

    for name in [s.name for s in STAGES]:
        seconds = stages.get(name, 0.0)
        print(f"   {name:<12} {seconds:8.1f} s  {100 * seconds / busy:5.1f} %  ({1000 * seconds / len(frames):6.0f} ms/frame)")
    overhead = busy - sum(stages.values())
    print(f"   {'other':<12} {overhead:8.1f} s  {100 * overhead / busy:5.1f} %  (broker, database, task start, "
          f"the last frames' idle tail)")
    print(f"   plate solves (first of a pointing): {len(first)}, {sum(first):.1f} s; frames per minute per core "
          f"without them: {per_core:.1f} (goal {GOAL_PER_CORE:.0f}: {per_core / GOAL_PER_CORE:.2f}x)")
    return {"rate": len(done) / wall * 60, "per_core": per_core, "first": first, "per_cpu_minute": per_cpu_minute,
            "propagated": [f.timings["solve"] for f in frames if f.wcs_source == "propagated"]}


def accuracy(frames, pointings) -> None:
    truth = {p["target"]["name"]: p["target"]["mag"] for p in pointings}
    errors = [f.photometry["magnitude"] - truth[f.target.name] for f in frames
              if f.photometry.get("magnitude") is not None]
    sigmas = [f.photometry["magnitude_error"] for f in frames if f.photometry.get("magnitude") is not None]
    print(f"   photometry of the targets: {len(errors)} frames, median |m - VT| {np.median(np.abs(errors)):.4f} mag, "
          f"median error {np.median(sigmas):.4f} mag; accepted {sum(bool(f.accepted) for f in frames)}")


def cleanup(network) -> None:
    from observations.frames import Frame, FrameUpload
    from observations.models import Observation

    Frame.objects.filter(network=network).delete()
    FrameUpload.objects.filter(network=network).delete()
    Observation.objects.filter(network=network).delete()
    owners = list(network.sites.values_list("owner_id", flat=True))
    network.sites.all().delete()
    network.delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk__in=owners).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--pointings", type=int, default=4)
    parser.add_argument("--size", type=int, default=2048, help="frame side, pixels")
    args = parser.parse_args()
    media_root = Path(tempfile.mkdtemp(prefix="datas-bench-pipeline-"))
    setup_django(media_root)
    header(f"frame pipeline: {args.frames} frames of {args.size}x{args.size}, {args.pointings} pointings")
    print(f"   peer for the solve stage: solve-field {tool_version(['solve-field', '--version'])} (hinted, per frame)")
    print("   the machine is shared with other engineers' work: wall times include their load")
    network = None
    try:
        started = time.perf_counter()
        (media_root / "raw").mkdir()
        pointings = render_pointings(args, media_root / "raw")
        print(f"   rendered in {time.perf_counter() - started:.0f} s")
        ids, seconds, network = ingest(pointings)
        print(f"   ingested (checked, hashed, stored) in {seconds:.1f} s: {1000 * seconds / len(ids):.0f} ms/frame")
        one = report(run(ids, 1, media_root, media_root / "workers.log"))
        from observations.frames import Frame
        from observations.states import FrameState

        # Forget the first run's astrometry, so the second solves each pointing afresh too.
        Frame.objects.filter(pk__in=ids).update(
            state=FrameState.RECEIVED, state_reason="", timings={}, notes={}, wcs_source="", reference_stars=[],
            wcs_header={}, wcs_reference=None, ra_deg=None, dec_deg=None, attempts=0)
        second = run(ids, 2, media_root, media_root / "workers.log")
        two = report(second)
        accuracy(second["frames"], pointings)
        print(f"{'speed-up from the second worker':<42} one {one['rate']:8.1f} f/min   two {two['rate']:8.1f} f/min"
              f"   ratio {two['rate'] / one['rate']:6.2f}x (ideal 2.00x on two free cores)")
        compare("solve stage per frame, median", statistics.median(one["propagated"]),
                statistics.median(one["first"]), "hinted solve-field")
    finally:
        if network is not None:
            cleanup(network)
        shutil.rmtree(media_root, ignore_errors=True)


if __name__ == "__main__":
    main()
