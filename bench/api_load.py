"""The agent API under load: polls and bulk uploads against `make serve`, driven by wrk on loopback.

Builds a throwaway PostgreSQL database (DATABASE_URL) with a network of ``--sites`` sites, one
site key each, and ``--targets`` targets, runs one scheduler pass into Redis (REDIS_URL), then
starts the production server (``make serve``: gunicorn, workers sized to the cores) on it and
drives it with wrk (Debian's ``wrk``; ``scripts/services.sh`` installs it) from loopback:

* ``polls``: ``GET /api/v1/targets?site_id=&count=10`` as the seed's client sends it, every
  connection cycling through the sites' keys (each poll authenticated, throttled and served);
* ``polls 304``: the same with ``If-None-Match`` holding the list's ETag (an agent with no change);
* ``uploads``: ``POST /api/v1/observations`` with batches of ``--batch`` new records;
* the baseline: the same polls against ``manage.py runserver`` on the same database, in the
  same run (the ratio is printed);
* ``--soak SECONDS``: ``--soak-agents`` agents polling once every few seconds beside
  ``--soak-uploads`` single-record uploads per second, for that long; any error fails it.

Every non-2xx/3xx answer and every socket error counts as an error. The per-key throttle is
raised for the run (DATAS_AGENT_THROTTLE_RATE): a few hundred keys stand for the thousands of
agents whose polls a real network's 1,000 requests/s would be. Goals (issue 12): >= 1,000
polls/s with p99 < 25 ms and >= 1,000 records/s on two cores, zero errors.

    python bench/api_load.py                      # about 2 minutes
    python bench/api_load.py --soak 600           # plus the 10-minute soak
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header, tool_version  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
os.environ["DEBUG"] = "0"
THROTTLE = "1000000/minute"
os.environ["DATAS_AGENT_THROTTLE_RATE"] = THROTTLE

POLL_LUA = r"""
local lines = {}
for line in io.lines(os.getenv("DATAS_BENCH_KEYS")) do
  local key, site, etag = line:match("^(%S+) (%S+) ?(%S*)$")
  lines[#lines + 1] = {key = key, site = site, etag = etag}
end
local conditional = os.getenv("DATAS_BENCH_CONDITIONAL") == "1"
local delay_ms = tonumber(os.getenv("DATAS_BENCH_DELAY_MS") or "0")
local i = 0
function init(args)
  local f = io.open("/dev/urandom", "rb"); local b = f:read(2); f:close()
  i = b:byte(1) * 256 + b:byte(2)
end
function request()
  i = i + 1
  local row = lines[(i % #lines) + 1]
  local headers = {["Authorization"] = "Bearer " .. row.key}
  if conditional and row.etag ~= "" then headers["If-None-Match"] = row.etag end
  return wrk.format("GET", "/api/v1/targets?site_id=" .. row.site .. "&count=10", headers)
end
if delay_ms > 0 then
  function delay() return math.random(math.floor(delay_ms / 2), math.floor(delay_ms * 3 / 2)) end
end
"""

UPLOAD_LUA = r"""
local sites = {}
for line in io.lines(os.getenv("DATAS_BENCH_UPLOADS")) do
  local key, site, filter, ids = line:match("^(%S+) (%S+) (%S+) (%S+)$")
  local targets = {}
  for id in ids:gmatch("[^,]+") do targets[#targets + 1] = id end
  sites[#sites + 1] = {key = key, site = site, filter = filter, targets = targets}
end
local batch = tonumber(os.getenv("DATAS_BENCH_BATCH"))
local delay_ms = tonumber(os.getenv("DATAS_BENCH_DELAY_MS") or "0")
local prefix, n = "", 0
function init(args)
  local f = io.open("/dev/urandom", "rb"); local b = f:read(6); f:close()
  prefix = string.format("%02x%02x%02x%02x-%02x%02x-4", b:byte(1, 6))
  math.randomseed(b:byte(1) * 65536 + b:byte(2) * 256 + b:byte(3))
end
local function record(s)
  n = n + 1
  local id = string.format("%s%03x-8%03x-%012x", prefix, math.floor(n / 0x1000000000000) % 0x1000, math.random(0, 0xfff),
                           n % 0x1000000000000)
  local t = s.targets[math.random(1, #s.targets)]
  local day = math.random(1, 28)
  return string.format('{"observation_id":"%s","target_id":%s,"observed_at":"2026-01-%02dT%02d:%02d:%02d.%03dZ",' ..
    '"exposure_sec":60,"filter":"%s","airmass":1.2%d,"seeing_arcsec":2.1,' ..
    '"photometry":{"magnitude":12.%03d,"error":0.02,"method":"aperture"}}',
    id, t, day, math.random(0, 23), math.random(0, 59), math.random(0, 59), math.random(0, 999), s.filter,
    math.random(0, 9), math.random(0, 999))
end
function request()
  local s = sites[math.random(1, #sites)]
  local body
  if batch == 1 then body = record(s) else
    local items = {}
    for k = 1, batch do items[k] = record(s) end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  return wrk.format("POST", "/api/v1/observations",
                    {["Authorization"] = "Bearer " .. s.key, ["Content-Type"] = "application/json"}, body)
end
if delay_ms > 0 then
  function delay() return math.random(math.floor(delay_ms / 2), math.floor(delay_ms * 3 / 2)) end
end
"""

# Appended to a short first run of each script: the first answer of each thread is shown, so a
# request the server refuses is seen before anything is measured.
FIRST_ANSWER_LUA = r"""
local shown = false
function response(status, headers, body)
  if not shown then
    shown = true
    io.stderr:write("first answer: " .. status .. " " .. body:sub(1, 160):gsub("%s+", " ") .. "\n")
  end
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(text: str) -> dict:
    """Requests/s, latency percentiles (ms) and errors from ``wrk --latency`` output."""
    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": float(rate.group(1)) if rate else 0.0, "requests": int(total.group(1)) if total else 0,
            "p50": latency("50"), "p99": latency("99"),
            "errors": (int(non_ok.group(1)) if non_ok else 0) + (sum(map(int, sock.groups())) if sock else 0)}


def run_wrk(url: str, script: str, env: dict, seconds: float, connections: int, threads: int = 2,
            expect: tuple[int, ...] | None = None) -> dict:
    """One wrk run; with ``expect``, a short check run whose first answers must have those statuses."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + (FIRST_ANSWER_LUA if expect else ""))
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
                              "--timeout", "10s", "-s", f.name, url], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=seconds + 60)
    finally:
        os.unlink(f.name)
    result = parse_wrk(out.stdout)
    if expect:
        statuses = {int(m) for m in re.findall(r"^first answer: (\d+)", out.stderr, re.M)}
        if not statuses or not statuses <= set(expect):
            raise SystemExit(f"the server answered {sorted(statuses)}, not {expect}:\n{out.stderr}")
    if not result["requests"]:
        raise SystemExit(f"wrk ran no request:\n{out.stdout}\n{out.stderr}")
    return result


def start_server(command: list[str], env: dict, port: int, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{command[0]} stopped at start (exit {proc.returncode}); see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"{command[0]} did not answer on port {port} within 2 minutes; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server and every process of its group (make, the server, its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers still finishing requests
    proc.wait()
    time.sleep(1)  # their database connections close


def line(what: str, r: dict, unit: str = "req/s", factor: float = 1.0) -> str:
    return (f"  {what:<34} {r['rps'] * factor:9,.0f} {unit:<10} p50 {r['p50']:6.2f} ms  p99 {r['p99']:7.2f} ms  "
            f"errors {r['errors']}")


def prepare(n_sites: int, n_targets: int) -> tuple[list[tuple], list[tuple]]:
    """The network, its keys and one pass; (poll rows, upload rows) for the wrk scripts."""
    from django.core.cache import cache
    from django.test import Client
    from scheduler_endpoint import fill  # bench/scheduler_endpoint.py

    from network.models import Network
    from scheduling.passes import run_network_pass
    from sites.services import issue_site_key

    cache.clear()
    network = Network.objects.create(name="Bench", slug="bench")
    tick = time.perf_counter()
    fill(network, n_sites, n_targets, np.random.default_rng(20261206))
    result = run_network_pass(network)
    listed = sum(1 for s in result.sites.values() if s.entries)
    print(f"  {n_sites:,} sites (one key each), {n_targets:,} targets, a pass into the cache: "
          f"{time.perf_counter() - tick:.1f} s; {listed} sites have a list now")
    target_ids = list(network.targets.values_list("pk", flat=True)[:200])
    polls, uploads = [], []
    for site in network.sites.order_by("pk"):
        key = issue_site_key(site, label="bench").plaintext
        response = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/targets", {"site_id": site.pk,
                                                                                      "count": 10})
        assert response.status_code == 200, response.content[:300]
        polls.append((key, site.pk, response.headers.get("ETag", "")))
        filters = site.filters or ["V"]
        uploads.append((key, site.pk, filters[0], ",".join(map(str, target_ids))))
    return polls, uploads


def cpu_per_request(key: str, site_id: int, n: int = 2000, etag: str = "") -> float:
    """CPU milliseconds per poll through Django's WSGI handler in this process (no HTTP, no wrk)."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/targets", "QUERY_STRING": f"site_id={site_id}&count=10",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_AUTHORIZATION": f"Bearer {key}", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               **({"HTTP_IF_NONE_MATCH": etag} if etag else {})}
    statuses = set()

    def start_response(status, headers):
        statuses.add(status[:3])

    for _ in range(20):
        b"".join(handler(dict(environ), start_response))
    start = time.process_time()
    for _ in range(n):
        b"".join(handler(dict(environ), start_response))
    used = (time.process_time() - start) / n * 1000
    assert statuses <= {"200", "304"}, statuses
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20, help="each wrk run (default 20)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100, help="records per upload request")
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: make serve's)")
    parser.add_argument("--soak", type=float, default=0, help="seconds of soak (0: none; the issue's is 600)")
    parser.add_argument("--soak-agents", type=int, default=200)
    parser.add_argument("--soak-uploads", type=int, default=50, help="records per second during the soak")
    parser.add_argument("--no-baseline", action="store_true", help="skip runserver")
    parser.add_argument("--server", choices=["gunicorn", "granian"], default=None,
                        help="make serve's SERVER (default: the Makefile's)")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: eval \"$(bash scripts/services.sh)\"")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    header("agent API under load: make serve vs runserver, wrk on loopback")
    print(f"   {tool_version(['wrk', '--version'])}; load average {os.getloadavg()[0]:.2f} at start")
    base_url = os.environ["DATABASE_URL"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    db_name = connection.settings_dict["NAME"]
    server_env = {"DATABASE_URL": base_url.rsplit("/", 1)[0] + "/" + db_name, "DEBUG": "0",
                  "DATAS_AGENT_THROTTLE_RATE": THROTTLE, "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    servers: list[subprocess.Popen] = []
    try:
        polls, uploads = prepare(args.sites, args.targets)
        key, site_id, etag = next(p for p in polls if p[2])
        print(f"  CPU per poll in process (Django's WSGI handler, no HTTP): {cpu_per_request(key, site_id):.2f} ms "
              f"(200), {cpu_per_request(key, site_id, etag=etag):.2f} ms (304); the issue measured 4.8 ms before")
        connection.close()
        keys_file = logs / "api_load_keys.txt"
        keys_file.write_text("".join(f"{k} {s} {e}\n" for k, s, e in polls))
        uploads_file = logs / "api_load_uploads.txt"
        uploads_file.write_text("".join(f"{k} {s} {f} {ids}\n" for k, s, f, ids in uploads))
        os.chmod(keys_file, 0o600)
        os.chmod(uploads_file, 0o600)
        poll_env = {"DATAS_BENCH_KEYS": str(keys_file)}
        upload_env = {"DATAS_BENCH_UPLOADS": str(uploads_file), "DATAS_BENCH_BATCH": str(args.batch)}

        port = free_port()
        make = ["make", "-s", "serve", f"HOST=127.0.0.1:{port}"]
        if args.workers:
            make.append(f"WORKERS={args.workers}")
        if args.server:
            make.append(f"SERVER={args.server}")
        servers.append(start_server(make, server_env, port, logs / "api_load_serve.log"))
        url = f"http://127.0.0.1:{port}"
        run_wrk(url, POLL_LUA, poll_env, 3, args.connections, expect=(200,))  # and warm every worker
        run_wrk(url, POLL_LUA, {**poll_env, "DATAS_BENCH_CONDITIONAL": "1"}, 1, 2, expect=(304,))
        run_wrk(url, UPLOAD_LUA, upload_env, 5, 2, expect=(201,))
        results = {
            "polls": run_wrk(url, POLL_LUA, poll_env, args.seconds, args.connections),
            "polls 304": run_wrk(url, POLL_LUA, {**poll_env, "DATAS_BENCH_CONDITIONAL": "1"}, args.seconds,
                                 args.connections),
            # Latency at the goal's rate, not at saturation: 50 agents each polling every ~40 ms.
            "polls 1k": run_wrk(url, POLL_LUA, {**poll_env, "DATAS_BENCH_DELAY_MS": "40"}, args.seconds, 50),
            "uploads": run_wrk(url, UPLOAD_LUA, upload_env, args.seconds, max(2, args.connections // 4)),
        }
        print(f"\n  make serve SERVER={args.server or '(default)'} ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, Redis cache), "
              f"{args.connections} connections, {args.seconds:.0f} s each:")
        print(line("GET /api/v1/targets (200)", results["polls"]))
        print(line("GET /api/v1/targets (If-None-Match)", results["polls 304"]))
        print(line("GET /api/v1/targets, 50 agents paced", results["polls 1k"]))
        print(line(f"POST /api/v1/observations x{args.batch}", results["uploads"], "records/s", args.batch))
        goals = {"polls/s >= 1,000": results["polls"]["rps"] >= 1000,
                 "poll p99 < 25 ms at >= 1,000/s": results["polls 1k"]["p99"] < 25 and results["polls 1k"]["rps"] >= 1000,
                 "records/s >= 1,000": results["uploads"]["rps"] * args.batch >= 1000,
                 "zero errors": not any(r["errors"] for r in results.values())}

        if not args.no_baseline:
            rport = free_port()
            servers.append(start_server([sys.executable, "manage.py", "runserver", f"127.0.0.1:{rport}",
                                         "--noreload"], server_env, rport, logs / "api_load_runserver.log"))
            slow = run_wrk(f"http://127.0.0.1:{rport}", POLL_LUA, poll_env, min(args.seconds, 10), args.connections)
            stop_server(servers.pop())
            print(line("baseline: runserver, same polls", slow))
            print(f"  ratio make serve / runserver: {results['polls']['rps'] / max(slow['rps'], 1e-9):.1f}x polls/s, "
                  f"p99 {slow['p99'] / results['polls']['p99']:.1f}x lower")

        if args.soak:
            delay = 1000  # each connection (an agent) polls about once a second
            uploaders = max(1, args.soak_uploads // 5)  # each about five uploads a second
            print(f"\n  soak: {args.soak_agents} agents polling about once a second each and "
                  f"{args.soak_uploads} uploads/s, {args.soak:.0f} s")
            soak_upload = subprocess.Popen(
                ["wrk", "-t1", f"-c{uploaders}", f"-d{int(args.soak)}s", "--latency", "--timeout", "10s", "-s",
                 _script_file(UPLOAD_LUA), url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, **upload_env, "DATAS_BENCH_BATCH": "1",
                     "DATAS_BENCH_DELAY_MS": str(max(1, 1000 * uploaders // args.soak_uploads - 30))})
            soak_polls = run_wrk(url, POLL_LUA, {**poll_env, "DATAS_BENCH_DELAY_MS": str(delay)}, args.soak,
                                 args.soak_agents)
            uploaded = parse_wrk(soak_upload.communicate(timeout=120)[0])
            print(line("soak polls", soak_polls))
            print(line("soak uploads (1 record each)", uploaded, "records/s"))
            goals["soak: zero errors"] = not soak_polls["errors"] and not uploaded["errors"]
        print("\n  goals: " + "; ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in goals.items()))
        print(f"  load average {os.getloadavg()[0]:.2f} at the end")
        print(json.dumps({k: {m: round(v, 3) for m, v in r.items()} for k, r in results.items()}))
    finally:
        for proc in servers:
            stop_server(proc)
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def _script_file(text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(text)
    return f.name


if __name__ == "__main__":
    main()
