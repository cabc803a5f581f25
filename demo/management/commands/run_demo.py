"""``manage.py run_demo [ADDRPORT] [--agents N]``: the portal, with simulated site agents feeding the demo.

Run after ``load_demo`` (``make run`` does both). Picks N demo sites where it is night (robotic
ones first), gives each a fresh key and a simulator configuration under ``var/agents/``,
serves the portal (runserver without the autoreloader, which would restart and orphan the
agents), starts one ``datas-agent run`` per site once the port is bound, and stops every agent
when the server stops, however it stops.
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from demo.agent_processes import AgentProcesses
from demo.agents import (
    MIN_DARK_HOURS,
    DemoAgent,
    prepare_demo_agents,
    prune_frames,
    write_agent_config,
)
from demo.services import DEMO_PASSWORD, DEMO_USERNAME

DEFAULT_AGENTS = 3
DEFAULT_KEEP_FRAMES_MIN = 30.0
WATCH_INTERVAL_S = 5.0
PRUNE_INTERVAL_S = 60.0
# A stopped agent is restarted after 5 s, then 10, 20 ... up to 5 min while it keeps stopping;
# one that ran for 10 minutes counts as healthy again.
RESTART_BACKOFF_S = (5.0, 300.0)
HEALTHY_RUN_S = 600.0


def restart_delay(agent) -> float:
    """Seconds to wait before restarting ``agent`` (an ``AgentProcess`` that just stopped)."""
    if time.monotonic() - agent.started_at >= HEALTHY_RUN_S:
        agent.restarts = 0
    first, ceiling = RESTART_BACKOFF_S
    return min(first * 2 ** agent.restarts, ceiling)


def _interrupt(signum: int, _frame: object) -> None:
    # runserver turns KeyboardInterrupt into a clean exit, and our finally stops the agents.
    raise KeyboardInterrupt(f"signal {signum}")


class Command(RunserverCommand):
    help = ("Serve the portal with simulated site agents (simulator backend) observing for the demo "
            "networks; Ctrl-C stops the portal and every agent. Run load_demo first.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--agents", type=int, default=DEFAULT_AGENTS, metavar="N",
                            help=f"how many simulated agents to start (default {DEFAULT_AGENTS}; 0 for none)")
        parser.add_argument("--keep-frames", type=float, default=DEFAULT_KEEP_FRAMES_MIN, metavar="MINUTES",
                            help="delete the agents' simulated FITS frames after this many minutes, so the "
                                 f"disk stays bounded (default {DEFAULT_KEEP_FRAMES_MIN:.0f}; 0 keeps them all)")

    def handle(self, *args, **options):
        count = options["agents"]
        if count < 0:
            raise CommandError(f"--agents must be 0 or more, not {count}")
        if options["keep_frames"] < 0:
            raise CommandError(f"--keep-frames must be 0 (keep all) or more minutes, not {options['keep_frames']}")
        self.keep_frames_s = options["keep_frames"] * 60.0
        # The autoreloader runs the server in a child process it restarts on every code change,
        # which would start a second set of agents and orphan the first.
        options["use_reloader"] = False
        self.agents_dir = Path(settings.VAR_DIR) / "agents"
        self.processes = AgentProcesses()
        self.stop_watching = threading.Event()
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            self.demo_agents = self._prepare(count)
            super().handle(*args, **options)
        finally:
            self.stop_watching.set()
            if self.processes.running:
                self.stdout.write(f"Stopping {len(self.processes.running)} simulated agent(s)...")
                self.processes.stop()
                self.stdout.write("Every agent stopped.")
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _prepare(self, count: int) -> list[DemoAgent]:
        if count == 0:
            return []
        try:
            agents = prepare_demo_agents(count, self.agents_dir, timezone.now())
        except OSError as exc:
            raise CommandError(f"cannot write the agents' key files under {self.agents_dir}: {exc}") from exc
        except DatabaseError as exc:
            raise CommandError(f"the database is not ready ({exc}): run `manage.py migrate` and "
                               "`manage.py load_demo` first (`make run` does)") from exc
        if not agents:
            raise CommandError("no demo sites to run agents for: run `manage.py load_demo` first "
                               "(`make run` does), or pass --agents 0")
        return agents

    def on_bind(self, server_port):
        super().on_bind(server_port)
        if not self.demo_agents:
            self._print_login(server_port)
            return
        url = f"http://{self._agent_host()}:{server_port}"
        try:
            for agent in self.demo_agents:
                write_agent_config(agent, url)
                self.processes.start(agent.site.name, agent.config_path, agent.log_path)
        except OSError as exc:
            # Not OSError: runserver would take it for a bind failure and os._exit(), skipping our cleanup.
            raise CommandError(f"cannot start the simulated agents: {exc}") from exc
        self._print_agents()
        self._print_login(server_port)
        threading.Thread(target=self._watch_agents, name="agent-watch", daemon=True).start()

    def _agent_host(self) -> str:
        """Where the agents reach this server: loopback when it listens on every interface."""
        if self.addr in ("0", "0.0.0.0"):
            return "127.0.0.1"
        if self.addr == "::":
            return "[::1]"
        return f"[{self.addr}]" if self._raw_ipv6 else self.addr

    def _print_agents(self) -> None:
        self.stdout.write(self.style.SUCCESS(
            f"{len(self.demo_agents)} simulated agent(s) (simulator backend); keys, configurations, data and "
            f"logs in {self.agents_dir}:"))
        if self.keep_frames_s:
            self.stdout.write(f"  (their simulated FITS frames are deleted after {self.keep_frames_s / 60:g} min; "
                              "--keep-frames 0 keeps them)")
        for agent, process in zip(self.demo_agents, self.processes.running, strict=True):
            site = agent.site
            self.stdout.write(f"  {site.name} ({site.network.slug}, {site.get_automation_display().lower()}): "
                              f"{agent.describe()}")
            self.stdout.write(f"      pid {process.pid}, log {agent.log_path}")
        waiting = [a for a in self.demo_agents if not (a.darkness.dark_now and a.darkness.dark_hours >= MIN_DARK_HOURS)]
        if waiting:
            self.stdout.write(self.style.WARNING(
                f"  Only {len(self.demo_agents) - len(waiting)} of the chosen sites have a night ahead now; the "
                "others were the next to get dark and observe once they are."))

    def _print_login(self, server_port: int) -> None:
        self.stdout.write(self.style.SUCCESS(
            f"Demo login: http://{self._agent_host()}:{server_port}/ as {DEMO_USERNAME!r}, password "
            f"{DEMO_PASSWORD!r} (the admin is at /admin/). Ctrl-C stops the portal and every agent."))

    def _watch_agents(self) -> None:
        """When an agent stops on its own (a bad key, a crash), say why in one line and restart it
        with a growing delay, so the demo stays alive; prune old frames."""
        due: dict[int, float] = {}  # pid of a stopped agent -> when to restart it
        next_prune = 0.0
        while not self.stop_watching.wait(WATCH_INTERVAL_S):
            if self.keep_frames_s and time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_INTERVAL_S
                for agent in self.demo_agents:
                    prune_frames(agent.data_dir / "frames", self.keep_frames_s)
            for agent in self.processes.exited():
                if self.stop_watching.is_set():
                    return
                if agent.pid not in due:
                    delay = restart_delay(agent)
                    due[agent.pid] = time.monotonic() + delay
                    self.stderr.write(f"The simulated agent for {agent.name} stopped (exit status "
                                      f"{agent.process.returncode}: {agent.last_words()}); restarting it in "
                                      f"{delay:.0f} s (log {agent.log_path})")
                elif time.monotonic() >= due[agent.pid]:
                    del due[agent.pid]
                    try:
                        fresh = self.processes.restart(agent)
                    except OSError as exc:
                        self.stderr.write(f"Cannot restart the agent for {agent.name}: {exc}")
                        continue
                    self.stdout.write(f"Restarted the simulated agent for {agent.name} (pid {fresh.pid}, "
                                      f"restart {fresh.restarts})")
