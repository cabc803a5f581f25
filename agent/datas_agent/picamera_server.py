"""``datas-agent pi-camera-server``: the Raspberry Pi camera over ZeroMQ, wire-compatible with
raspberrypi-astro-capture (REQ/REP JSON on port 3777: ready_status, calibrate, query, capture).

Fixes over the original server: capture works before query (it calibrates and queries
itself); every request gets exactly one reply, errors included (``{"status": -1,
"message"}``); a client that vanishes during a multipart transfer no longer wedges the
server (acks time out, and a request that is not an ack starts over as a new request);
calibration is stored per camera mode (resolution and format), not once for ever.
Additive: ``capture`` options may carry ``"format": "fits"`` (FITS with DATE-OBS, EXPTIME,
GAIN), ignored by the original client. Camera: picamera2 when installed, else a synthetic sky.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_PORT = 3777
RAM_FRACTION = 0.333  # the original's share of free memory for a RAM batch


def parse_camera_options(text: str) -> dict[str, str | bool]:
    """``"ISO=800,shutter=500000,awb=off,nopreview"`` -> dict (bare flags become True)."""
    options: dict[str, str | bool] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        options[key.strip()] = value.strip() if sep else True
    return options


class SyntheticSky:
    """A stand-in sensor: a seeded star field whose signal scales with the shutter time."""

    mode = "synthetic-640x480"

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.count = 0

    def capture(self, shutter_s: float, fmt: str) -> bytes:
        from datas_pipeline.synthetic.fields import expose, random_stars, render_stars

        rng = np.random.default_rng(self.seed * 100003 + self.count)
        self.count += 1
        shape = (480, 640)
        stars = random_stars(shape, 60, np.random.default_rng(self.seed), margin=8)
        # The star the telescope is pointed at, at the centre (a Pi camera has no mount to
        # report where it points, so the agent looks for its target there).
        stars[0]["x"], stars[0]["y"], stars[0]["flux"] = (shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0, 5e4
        stars["flux"] *= shutter_s
        adu = expose(render_stars(shape, stars, fwhm=2.5), rng, sky=100.0 * shutter_s, read_noise=3.0)
        return encode_image(np.clip(adu, 0, 65535).astype(np.uint16), shutter_s, fmt, "synthetic sky")


class Picamera2Sensor:  # pragma: no cover - needs a Raspberry Pi
    """libcamera through picamera2: raw Bayer frames summed to mono, at full sensor resolution."""

    def __init__(self) -> None:
        from picamera2 import Picamera2

        self.camera = Picamera2()
        self.camera.configure(self.camera.create_still_configuration(raw={}))
        self.mode = f"picamera2-{self.camera.camera_properties.get('Model', 'sensor')}"
        self.camera.start()

    def capture(self, shutter_s: float, fmt: str) -> bytes:
        self.camera.set_controls({"ExposureTime": int(shutter_s * 1e6), "AnalogueGain": 1.0})
        raw = self.camera.capture_array("raw").view(np.uint16)
        return encode_image(raw, shutter_s, fmt, self.mode)


def encode_image(data: np.ndarray, shutter_s: float, fmt: str, instrument: str) -> bytes:
    if fmt == "fits":
        from astropy.io import fits

        header = fits.Header()
        header["DATE-OBS"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        header["EXPTIME"] = shutter_s
        header["GAIN"] = 1.0
        header["INSTRUME"] = instrument
        buffer = io.BytesIO()
        hdu = fits.PrimaryHDU(np.array(data, copy=True), header=header)
        hdu.scale("int16", bzero=32768)
        hdu.writeto(buffer)
        return buffer.getvalue()
    from PIL import Image

    scaled = np.clip(data / max(float(np.percentile(data, 99.9)), 1.0) * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(scaled).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@dataclass
class Calibration:
    imgsize: float
    exectime: float


class CameraServer:
    def __init__(self, sensor, workdir: Path, bind: str = "0.0.0.0", port: int = DEFAULT_PORT,
                 ack_timeout_s: float = 30.0, max_ram_shots: float | None = None) -> None:
        self.sensor = sensor
        self.workdir = workdir
        self.address = f"tcp://{bind}:{port}"
        self.ack_timeout_s = ack_timeout_s
        self.max_ram_override = max_ram_shots
        self.calibration_path = workdir / "calibration.json"
        self.pending: dict | None = None  # a request that arrived where an ack was expected
        workdir.mkdir(parents=True, exist_ok=True)

    # -- calibration and capacity -------------------------------------------------------------

    def calibrate(self, fmt: str = "jpg") -> Calibration:
        key = f"{self.sensor.mode}:{fmt}"
        stored = json.loads(self.calibration_path.read_text()) if self.calibration_path.exists() else {}
        if key not in stored:
            sizes, times = [], []
            for _ in range(3):
                start = time.monotonic()
                sizes.append(len(self.sensor.capture(1.0, fmt)))
                times.append(time.monotonic() - start)
            stored[key] = {"imgsize": float(np.mean(sizes)), "exectime": float(np.mean(times))}
            self.calibration_path.write_text(json.dumps(stored))
        return Calibration(**stored[key])

    def query(self, fmt: str = "jpg") -> dict:
        cal = self.calibrate(fmt)
        mem_free = _mem_free_bytes()
        disk_free = shutil.disk_usage(self.workdir).free
        max_ram = self.max_ram_override if self.max_ram_override is not None else mem_free / cal.imgsize * RAM_FRACTION
        return {"average_image_size": cal.imgsize, "1s_shutter_average_execution_time": cal.exectime,
                "max_ram_shots": max_ram, "max_disk_shots": disk_free / cal.imgsize}

    # -- the REP loop -----------------------------------------------------------------------

    def serve(self, stop_after: int | None = None) -> None:
        import zmq

        context = zmq.Context.instance()
        socket = self._open(context)
        handled = 0
        try:
            while stop_after is None or handled < stop_after:
                request = self.pending if self.pending is not None else socket.recv_json()
                self.pending = None
                socket = self.handle(socket, context, request)
                handled += 1
        finally:
            socket.close(linger=0)

    def _open(self, context):
        import zmq

        socket = context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(self.address)
        log.info("camera server listening on %s (sensor %s)", self.address, self.sensor.mode)
        return socket

    def handle(self, socket, context, request: dict):
        """Answer one request (exactly once); return the socket to use next (reset after a lost client)."""
        try:
            command = request.get("command") if isinstance(request, dict) else None
            if command == "ready_status":
                socket.send_json({"status": "ready", "proto": 2})
            elif command == "calibrate":
                self.calibrate()
                socket.send_json({"status": "ok"})
            elif command == "query":
                socket.send_json({"status": "ok", "result": self.query()})
            elif command == "capture":
                return self.capture(socket, context, *request.get("ARGS", [1, {}]))
            else:
                socket.send_json({"status": -1, "message": f"unknown command {command!r}; known: ready_status, "
                                                           "calibrate, query, capture"})
        except Exception as exc:  # one reply per request, whatever happened
            log.exception("request failed")
            socket.send_json({"status": -1, "message": f"{type(exc).__name__}: {exc}"})
        return socket

    def capture(self, socket, context, shots: int = 1, params: dict | None = None):
        import zmq

        params = params or {}
        options = parse_camera_options(str(params.get("cameraopts", "")))
        shutter_s = int(options.get("shutter", 1_000_000)) / 1e6
        fmt = str(params.get("format", "jpg"))
        capacity = self.query(fmt)  # the original failed here when query had not run first
        shots = int(shots)
        if shots > capacity["max_ram_shots"] and shots > capacity["max_disk_shots"]:
            socket.send_json({"status": -1, "message": "Not enough disk for all shots"})
            return socket
        started, stamp = time.monotonic(), time.time()
        if shots <= capacity["max_ram_shots"]:
            images = [base64.b64encode(self.sensor.capture(shutter_s, fmt)).decode() for _ in range(shots)]
            socket.send_json({"status": "ok", "result": {"TIMESTAMP": stamp, "PARAMS": params, "IMAGES": images,
                                                          "EXECTIME": time.monotonic() - started}})
            return socket
        batch = self.workdir / f"batch-{int(stamp)}"
        batch.mkdir(exist_ok=True)
        paths = []
        for i in range(shots):
            path = batch / f"{i:04d}.{ 'fits' if fmt == 'fits' else 'jpg'}"
            path.write_bytes(self.sensor.capture(shutter_s, fmt))
            paths.append(str(path))
        socket.send_json({"status": "ok", "result": {"TIMESTAMP": stamp, "PARAMS": params, "PATHSET": paths,
                                                      "EXECTIME": time.monotonic() - started}, "multipart": shots})
        socket.setsockopt(zmq.RCVTIMEO, int(self.ack_timeout_s * 1000))
        try:
            for path in paths:
                ack = socket.recv_json()
                if ack != {"status": "ready"}:
                    self.pending = ack  # a new client's request: abandon this transfer, answer it next
                    return socket
                socket.send_json({"result": "ok", "path": path,
                                  "data": base64.b64encode(Path(path).read_bytes()).decode()})
            ack = socket.recv_json()
            if ack != {"status": "ready"}:
                self.pending = ack
                return socket
            socket.send_json({"status": "ok"})
            return socket
        except zmq.Again:
            log.warning("client vanished during a multipart transfer; resetting the socket")
            socket.close(linger=0)
            return self._open(context)
        finally:
            shutil.rmtree(batch, ignore_errors=True)
            if not socket.closed:
                socket.setsockopt(zmq.RCVTIMEO, -1)


def _mem_free_bytes() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) if hasattr(os, "sysconf") else 1e9


def register(sub) -> None:
    p = sub.add_parser("pi-camera-server", help="serve a Raspberry Pi camera over ZeroMQ (port 3777)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--workdir", type=Path, default=Path("pi-camera-data"), help="calibration and disk batches")
    p.add_argument("--synthetic", action="store_true", help="a synthetic sky even when picamera2 is present")
    p.add_argument("--max-ram-shots", type=float, default=None, help="override the RAM batch capacity")
    p.set_defaults(func=_run)


def _run(args) -> int:
    sensor = SyntheticSky()
    if not args.synthetic:
        try:
            sensor = Picamera2Sensor()
        except ImportError:
            log.info("picamera2 not installed: serving a synthetic sky")
    CameraServer(sensor, args.workdir, args.bind, args.port, max_ram_shots=args.max_ram_shots).serve()
    return 0
