"""The INDI client that runs in a child process (see ``drivers/indi.py``).

pyindi-client wraps a native library that has segfaulted on BLOB access in the field, so the
agent never loads it in its own process. This module is imported only in the child; it talks
to the parent through a ``multiprocessing`` pipe: ``(method, args)`` in, ``("ok", result)``
or ``("error", message)`` out. It imports nothing heavier than PyIndi.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import PyIndi

POLL_S = 0.05


class IndiOperationError(Exception):
    """A device refused a command or did not answer in time."""


class _Client(PyIndi.BaseClient):
    def __init__(self) -> None:
        super().__init__()
        self.blob_event = threading.Event()
        self.blob: tuple[str, bytes] | None = None
        self.disconnected = False

    def updateProperty(self, prop):  # noqa: N802 - PyIndi's callback name
        if prop.getType() == PyIndi.INDI_BLOB:
            # Copy the bytes inside the callback, as soon as they arrive (pyindi-client #46, #61).
            for blob in PyIndi.PropertyBlob(prop):
                self.blob = (blob.getFormat(), bytes(blob.getblobdata()))
            self.blob_event.set()

    def serverDisconnected(self, code):  # noqa: N802
        self.disconnected = True


class IndiWorker:
    """Synchronous INDI operations on named devices of one indiserver."""

    def __init__(self) -> None:
        self.client = _Client()
        self.address = ""
        self.devices: dict[str, str] = {}

    def _wait(self, what: str, probe, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if self.client.disconnected:
                raise IndiOperationError(f"indiserver at {self.address} closed the connection while waiting for {what}")
            if time.monotonic() > deadline:
                raise IndiOperationError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(POLL_S)

    def _device(self, role: str):
        name = self.devices[role]
        device = self.client.getDevice(name)
        if device is None:
            raise IndiOperationError(f"INDI device {name!r} disappeared from {self.address}")
        return device

    def _property(self, role: str, name: str, kind: str, timeout: float = 10.0):
        device_name = self.devices[role]

        def probe():
            device = self.client.getDevice(device_name)
            prop = device and getattr(device, "get" + kind)(name)
            return prop if prop is not None and prop.isValid() else None
        return self._wait(f"{device_name}.{name}", probe, timeout)

    def connect(self, host: str, port: int, devices: dict[str, str], timeout: float = 15.0) -> dict[str, Any]:
        self.address = f"{host}:{port}"
        self.devices = dict(devices)
        self.client.setServer(host, int(port))
        if not self.client.connectServer():
            raise IndiOperationError(f"cannot connect to indiserver at {self.address} (is it running?)")
        for role, name in devices.items():
            try:
                self._wait(f"device {name!r}", lambda n=name: self.client.getDevice(n), timeout)
            except IndiOperationError:
                present = sorted(d.getDeviceName() for d in self.client.getDevices())
                raise IndiOperationError(
                    f"INDI {role} {name!r} not found on {self.address}; devices there: "
                    f"{', '.join(present) or 'none'}") from None
            switch = self._property(role, "CONNECTION", "Switch")
            switch.reset()
            switch[0].setState(PyIndi.ISS_ON)
            self.client.sendNewSwitch(switch)
            self._wait(f"{name!r} to connect", lambda n=name: self.client.getDevice(n).isConnected(), timeout)
        info: dict[str, Any] = {}
        if "camera" in devices:
            camera = devices["camera"]
            self.client.setBLOBMode(PyIndi.B_ALSO, camera, "CCD1")
            self._set_switch("camera", "UPLOAD_MODE", 0)  # UPLOAD_CLIENT
            active = {"ACTIVE_FILTER": devices.get("filter_wheel"), "ACTIVE_TELESCOPE": devices.get("mount")}
            with contextlib.suppress(IndiOperationError):  # not every camera snoops other devices
                texts = self._property("camera", "ACTIVE_DEVICES", "Text", timeout=2.0)
                for item in texts:
                    if active.get(item.getName()):
                        item.setText(active[item.getName()])
                self.client.sendNewText(texts)
        if "mount" in devices:
            with contextlib.suppress(IndiOperationError):
                park = self._property("mount", "TELESCOPE_PARK", "Switch", timeout=2.0)
                if park[0].getState() == PyIndi.ISS_ON:
                    self._set_switch("mount", "TELESCOPE_PARK", 1)  # UNPARK
            info["mount_equinox"] = "JNOW"
        return info

    def _set_switch(self, role: str, name: str, index: int) -> None:
        switch = self._property(role, name, "Switch")
        switch.reset()
        switch[index].setState(PyIndi.ISS_ON)
        self.client.sendNewSwitch(switch)

    def slew(self, ra_hours: float, dec_deg: float, timeout: float = 300.0) -> tuple[float, float]:
        self._set_switch("mount", "ON_COORD_SET", 0)  # TRACK: slew, then track
        coords = self._property("mount", "EQUATORIAL_EOD_COORD", "Number")
        coords[0].setValue(ra_hours)
        coords[1].setValue(dec_deg)
        self.client.sendNewNumber(coords)
        time.sleep(0.3)  # let the driver report BUSY before waiting for it to settle
        self._wait("the slew to finish", lambda: coords.getState() != PyIndi.IPS_BUSY, timeout)
        if coords.getState() == PyIndi.IPS_ALERT:
            raise IndiOperationError(f"{self.devices['mount']!r} refused the slew (state Alert)")
        return coords[0].getValue(), coords[1].getValue()

    def position(self) -> tuple[float, float]:
        coords = self._property("mount", "EQUATORIAL_EOD_COORD", "Number")
        return coords[0].getValue(), coords[1].getValue()

    def park(self) -> None:
        self._set_switch("mount", "TELESCOPE_PARK", 0)

    def filter_names(self) -> list[str]:
        return [item.getText() for item in self._property("filter_wheel", "FILTER_NAME", "Text")]

    def set_filter(self, slot: int, timeout: float = 60.0) -> None:
        number = self._property("filter_wheel", "FILTER_SLOT", "Number")
        number[0].setValue(slot)
        self.client.sendNewNumber(number)
        time.sleep(0.1)
        self._wait("the filter wheel", lambda: number.getState() != PyIndi.IPS_BUSY, timeout)
        if round(number[0].getValue()) != slot:
            raise IndiOperationError(f"{self.devices['filter_wheel']!r} is at slot {number[0].getValue():g}, "
                                     f"not {slot}")

    def expose(self, seconds: float, path: str, light: bool = True, timeout: float = 120.0) -> dict[str, Any]:
        self._set_switch("camera", "CCD_FRAME_TYPE", 0 if light else 2)  # FRAME_LIGHT / FRAME_DARK
        exposure = self._property("camera", "CCD_EXPOSURE", "Number")
        self.client.blob_event.clear()
        self.client.blob = None
        exposure[0].setValue(seconds)
        self.client.sendNewNumber(exposure)
        if not self.client.blob_event.wait(seconds + timeout):
            raise IndiOperationError(f"no image from {self.devices['camera']!r} within {seconds + timeout:g} s")
        blob_format, data = self.client.blob
        tmp = f"{path}.part"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return {"format": blob_format, "bytes": len(data)}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnectServer()


def main() -> int:
    """``datas-agent _indi-worker``: connect back to the parent named in the environment and serve."""
    from multiprocessing.connection import Client

    host, port, key = os.environ["DATAS_INDI_WORKER"].rsplit(":", 2)
    conn = Client((host, int(port)), authkey=bytes.fromhex(key))
    serve(conn)
    return 0


def serve(conn) -> None:
    """The child's main loop: one answer per request, until ``close`` or the parent goes away."""
    worker = IndiWorker()
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            break
        if method == "close":
            worker.close()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", getattr(worker, method)(*args)))
        except IndiOperationError as exc:
            conn.send(("error", str(exc)))
        except Exception as exc:  # report, never die silently: the parent decides
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    worker.close()
