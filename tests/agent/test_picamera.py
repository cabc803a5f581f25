"""The Pi camera ZeroMQ server (synthetic sky) and the agent's client driver, over real sockets."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import zmq
from datas_agent.config import load_config
from datas_agent.drivers import open_rig
from datas_agent.drivers.base import ExposureRequest

from tests.agent.conftest import agent_env, write_config
from tests.agent.simulators import free_port, stop_group, wait_for_port


def start_server(tmp_path, *extra):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "datas_agent", "pi-camera-server", "--bind", "127.0.0.1",
                             "--port", str(port), "--synthetic", "--workdir", str(tmp_path / "pi"), *extra],
                            env=agent_env(), start_new_session=True, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc=proc)
    return proc, port


@pytest.fixture(params=["ram", "disk"])
def camera_server(request, tmp_path):
    proc, port = start_server(tmp_path, *(["--max-ram-shots", "0"] if request.param == "disk" else []))
    yield port
    stop_group(proc)


def test_driver_takes_a_fits_frame_in_ram_and_multipart_modes(camera_server, tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:9", devices="    camera: {backend: picamera}\n    mount: {backend: none}\n    filter_wheel: {backend: none}\n",
                        hardware_extra=f"  picamera: {{endpoint: 'tcp://127.0.0.1:{camera_server}', timeout_s: 20}}\n")
    with open_rig(load_config(path)) as rig:
        assert rig.mount is None and rig.filter_wheel is None
        short = rig.camera.expose(ExposureRequest(exposure_s=0.5))
        long = rig.camera.expose(ExposureRequest(exposure_s=2.0))
    assert short.data.shape == (480, 640) and short.header["INSTRUME"] == "synthetic sky"
    # The shutter reached the sensor: four times the exposure, about four times the star signal.
    ratio = (np.percentile(long.data, 99.95) - np.median(long.data)) / (
        np.percentile(short.data, 99.95) - np.median(short.data))
    assert 3.0 < ratio < 5.0


def test_original_protocol_and_its_bugs_fixed(tmp_path):
    proc, port = start_server(tmp_path)
    context = zmq.Context.instance()
    try:
        def client():
            sock = context.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, 20000)
            sock.connect(f"tcp://127.0.0.1:{port}")
            return sock

        sock = client()
        sock.send_json({"command": "capture", "ARGS": [2, {"cameraopts": "ISO=800,shutter=500000"}]})
        reply = sock.recv_json()   # capture before query works, JPEGs as the original sends
        assert reply["status"] == "ok" and len(reply["result"]["IMAGES"]) == 2
        sock.send_json({"command": "selfdestruct"})
        assert sock.recv_json()["status"] == -1      # an error is one reply, and the server lives on
        sock.send_json({"command": "query"})
        result = sock.recv_json()["result"]
        assert {"average_image_size", "1s_shutter_average_execution_time", "max_ram_shots",
                "max_disk_shots"} <= set(result)
        sock.send_json({"command": "ready_status"})
        assert sock.recv_json()["status"] == "ready"
        sock.close()
    finally:
        stop_group(proc)
