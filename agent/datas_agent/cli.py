"""``datas-agent COMMAND``: the site agent's command line.

Every expected failure (bad configuration, unreachable hardware or server, a rejected key)
ends with one clear message on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from datas_agent import __version__

DEFAULT_CONFIG = "datas-agent.yaml"
CONFIG_ENV = "DATAS_AGENT_CONFIG"
EXIT_USAGE = 2


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG),
        help=f"configuration file (YAML or INI; default ${CONFIG_ENV} or ./{DEFAULT_CONFIG})",
    )


def cmd_init(args: argparse.Namespace) -> int:
    from datas_agent.config import example_config_text
    from datas_agent.storage import atomic_write_bytes

    path = Path(args.config)
    if path.exists() and not args.force:
        print(f"{path} already exists; use --force to overwrite it", file=sys.stderr)
        return EXIT_USAGE
    atomic_write_bytes(path, example_config_text().encode())
    print(f"wrote {path}: edit server, site and hardware, then `datas-agent check-config {path}`")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from datas_agent.config import load_config

    config = load_config(args.config)
    devices = ", ".join(f"{role}={dev.backend}:{dev.name or '-'}" for role, dev in config.hardware.devices.items())
    print(f"{config.path}: OK")
    print(f"  server   {config.server.url} (site {config.server.site_id})")
    print(f"  site     lat {config.site.latitude_deg:+.4f} lon {config.site.longitude_deg:+.4f} "
          f"{config.site.elevation_m:.0f} m, {len(config.site.horizon)} horizon points")
    print(f"  hardware {devices}; filters {', '.join(config.hardware.filters) or '(from the wheel)'}")
    print(f"  safety   altitude >= {config.safety.min_altitude_deg} deg, "
          f"Sun <= {config.safety.max_sun_altitude_deg} deg")
    print(f"  data     {config.data_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import time

    from datas_agent.config import load_config
    from datas_agent.queue import Outbox

    config = load_config(args.config)
    if not config.queue_path.exists():
        print(f"no queue yet at {config.queue_path}: nothing observed, nothing pending")
        return 0
    with Outbox(config.queue_path) as outbox:
        counts = outbox.counts()
        waiting = counts["pending"] + counts["record_sent"]
        print(f"queue {config.queue_path}")
        print(f"  pending {waiting} (frame still to upload: {counts['record_sent']}), "
              f"sent {counts['sent']}, rejected {counts['rejected']}")
        now = time.time()
        for item in outbox.items(limit=args.limit):
            age = (now - item.created_at) / 60.0
            retry = f", next try in {max(item.next_attempt_at - now, 0):.0f} s" if item.attempts else ""
            print(f"  #{item.seq} {item.observation_id} {item.record.get('filter', '')} "
                  f"{item.state}, {age:.0f} min old, {item.attempts} attempt(s){retry}")
            if item.last_error:
                print(f"      last error: {item.last_error}")
        for item in outbox.items(states=("rejected",), limit=args.limit):
            print(f"  rejected #{item.seq} {item.observation_id}: {item.last_error}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from datas_agent.client import DatasClient
    from datas_agent.config import load_config
    from datas_agent.queue import Outbox
    from datas_agent.uploader import Uploader

    config = load_config(args.config)
    with Outbox(config.queue_path) as outbox:
        if args.requeue_rejected:
            print(f"{outbox.requeue_rejected()} rejected observation(s) put back in line")
        client = DatasClient(config.server.url, config.server.api_key, config.server.site_id,
                             config.server.timeout_s)
        result = Uploader(outbox, client).drain(force=True)
        counts = outbox.counts()
    print(f"sent {result.sent}, rejected {result.rejected}, still pending "
          f"{counts['pending'] + counts['record_sent']}")
    if result.blocked_by:
        print(f"stopped: {result.blocked_by}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from datas_agent.config import load_config

    config = load_config(args.config)
    from datas_agent.loop import run_agent

    return run_agent(config, cycles=args.cycles, stop_when_idle=args.until_idle)


def cmd_refresh_time_data(args: argparse.Namespace) -> int:
    from datas_pipeline.sky.timedata import TimeDataError, refresh_time_data

    try:
        status = refresh_time_data()
    except TimeDataError as exc:
        print(f"datas-agent: could not download the Earth-orientation table: {exc}", file=sys.stderr)
        return 1
    print(status.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datas-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"datas-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", help="write a commented example configuration")
    _config_arg(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check-config", help="validate a configuration and summarise it")
    _config_arg(p)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("status", help="what is waiting in the upload queue")
    _config_arg(p)
    p.add_argument("--limit", type=int, default=20, help="observations to list (default 20)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("upload", help="send the queue to the server now, once")
    _config_arg(p)
    p.add_argument("--requeue-rejected", action="store_true",
                   help="first put observations the server rejected back in line")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("run", help="observe: poll, slew, expose, measure, upload, repeat")
    _config_arg(p)
    p.add_argument("--cycles", type=int, default=None, help="stop after this many polls (default: run on)")
    p.add_argument("--until-idle", action="store_true",
                   help="stop once nothing is observable and the queue is empty")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("refresh-time-data",
                       help="download fresh Earth-orientation tables now (needs internet; optional)")
    p.set_defaults(func=cmd_refresh_time_data)

    # The INDI client's child process (drivers/indi.py); not for people.
    p = sub.add_parser("_indi-worker")
    p.set_defaults(func=lambda args: __import__("datas_agent.drivers.indi_worker", fromlist=["main"]).main())

    for module in EXTRA_COMMANDS:
        __import__(module, fromlist=["register"]).register(sub)
    return parser


# Commands whose modules register themselves (they import heavier libraries only when run).
EXTRA_COMMANDS: tuple[str, ...] = ("datas_agent.picamera_server", "datas_agent.livestack")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    from datas_agent.errors import AgentError

    args = build_parser().parse_args(argv)
    configure_logging("DEBUG" if args.verbose else os.environ.get("DATAS_AGENT_LOG_LEVEL", "INFO"))
    try:
        return int(args.func(args) or 0)
    except AgentError as exc:
        print(f"datas-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # e.g. a data folder that cannot be created
        print(f"datas-agent: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("datas-agent: interrupted", file=sys.stderr)
        return 130
