"""Raspberry Pi camera over ZeroMQ (``datas-agent pi-camera-server`` or the original server).

A REQ client with timeouts: when a reply does not come, the socket is closed and reopened
(REQ/REP lock-step cannot recover otherwise) and the command fails with a DriverError. The
camera is asked for FITS frames; the shutter goes in microseconds inside ``cameraopts`` as
the original protocol has it.

Options (``hardware.picamera``): ``endpoint`` (tcp://host:3777), ``timeout_s`` (60),
``camera_options`` (extra ``k=v`` items, e.g. ``ISO=800``).
"""
from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

from astropy.io import fits

from datas_agent.drivers.base import Backend, Camera, Exposure, ExposureRequest
from datas_agent.errors import DriverError


class PiCameraBackend(Backend):
    name = "picamera"
    extra = "picamera"

    def __init__(self, options, hardware, site) -> None:
        super().__init__(options, hardware, site)
        try:
            import zmq
        except ImportError:
            raise DriverError("the picamera backend needs pyzmq: pip install 'datas-agent[picamera]'") from None
        self.zmq = zmq
        self.endpoint = str(options.get("endpoint", "tcp://127.0.0.1:3777"))
        self.timeout_s = float(options.get("timeout_s", 60.0))
        self.camera_options = str(options.get("camera_options", ""))
        self.context = zmq.Context.instance()
        self.socket = None

    def _socket(self):
        if self.socket is None:
            self.socket = self.context.socket(self.zmq.REQ)
            self.socket.setsockopt(self.zmq.LINGER, 0)
            self.socket.connect(self.endpoint)
        return self.socket

    def request(self, message: dict, timeout_s: float | None = None) -> dict:
        socket = self._socket()
        socket.send_json(message)
        if not socket.poll(int((timeout_s or self.timeout_s) * 1000)):
            socket.close(linger=0)
            self.socket = None
            raise DriverError(f"Pi camera at {self.endpoint} did not answer {message.get('command', 'ack')!r} "
                              f"within {timeout_s or self.timeout_s:g} s")
        reply = socket.recv_json()
        if isinstance(reply, dict) and reply.get("status") not in ("ok", "ready", None) and "data" not in reply:
            raise DriverError(f"Pi camera at {self.endpoint}: {reply.get('message', reply.get('status'))}")
        return reply

    def connect(self) -> None:
        reply = self.request({"command": "ready_status"}, timeout_s=min(self.timeout_s, 10.0))
        if reply.get("status") != "ready":
            raise DriverError(f"Pi camera at {self.endpoint} is not ready: {reply}")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None

    def camera(self, device):
        return PiCamera(self, device or "Raspberry Pi camera")


class PiCamera(Camera):
    def __init__(self, backend: PiCameraBackend, name: str) -> None:
        self.backend = backend
        self.name = name

    def expose(self, request: ExposureRequest) -> Exposure:
        b = self.backend
        options = ",".join(filter(None, [b.camera_options, f"shutter={int(round(request.exposure_s * 1e6))}"]))
        started = datetime.now(UTC)
        reply = b.request({"command": "capture", "ARGS": [1, {"cameraopts": options, "format": "fits"}]},
                          timeout_s=b.timeout_s + request.exposure_s * 3)
        if "multipart" in reply:
            images = []
            for _ in range(int(reply["multipart"])):
                images.append(b.request({"status": "ready"})["data"])
            b.request({"status": "ready"})  # the closing {"status": "ok"}
        else:
            images = reply["result"]["IMAGES"]
        try:
            with fits.open(io.BytesIO(base64.b64decode(images[0]))) as hdul:
                data, header = hdul[0].data.copy(), hdul[0].header
        except (OSError, ValueError, IndexError, TypeError) as exc:
            raise DriverError(f"Pi camera at {b.endpoint} sent no readable FITS image ({exc})") from None
        if "DATE-OBS" in header:
            started = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
        cards = {"INSTRUME": header.get("INSTRUME", self.name), "GAIN": header.get("GAIN")}
        return Exposure(data=data, started_at=started, exposure_s=request.exposure_s,
                        header={k: v for k, v in cards.items() if v is not None})
