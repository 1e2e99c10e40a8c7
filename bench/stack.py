"""The stack under test: its own database and Redis database on the worktree's services
(scripts/setup.sh starts those), and the web and worker processes of Procfile.dev (what
`make run` starts), launched with DJANGO_DEBUG=0 on a bench port and stopped by the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".local" / "bench"
PROCFILE = ROOT / "Procfile.dev"
BENCH_DATABASE = "ze_bench"
BENCH_REDIS_DB = 5
# The simulator would add load of its own; everything else `make run` starts, the bench starts.
SKIPPED_PROCESSES = {"simulator"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class BenchEnv:
    database_url: str
    redis_url: str
    web_port: int
    # The broker's variables when it is not the run's Redis (the local SQS server).
    broker: dict[str, str] = field(default_factory=dict)

    @property
    def psycopg_dsn(self) -> str:
        return self.database_url.replace("postgis://", "postgresql://", 1)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def variables(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CHANNELS_PREFIX": "ze-bench",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
            "PORT": str(self.web_port),
            **self.broker,
        }


def bench_env_build(*, web_port: int) -> BenchEnv:
    """The bench's database and Redis db on the servers `.local/env` names; loopback only."""
    database, redis = urlsplit(os.environ["DATABASE_URL"]), urlsplit(os.environ["REDIS_URL"])
    for url in (database, redis):
        if url.hostname not in LOOPBACK:
            raise SystemExit(f"The bench runs on this machine only; {url.hostname} is not a loopback address.")
    return BenchEnv(
        database_url=urlunsplit(database._replace(path=f"/{BENCH_DATABASE}")),
        redis_url=urlunsplit(redis._replace(path=f"/{BENCH_REDIS_DB}")),
        web_port=web_port,
    )


def bench_database_recreate(*, env: BenchEnv) -> None:
    """A fresh database per run (the one `env` names): bytes per ping and row counts see
    only this run's rows."""
    url = urlsplit(env.psycopg_dsn)
    name = url.path.lstrip("/")
    with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def procfile_commands() -> dict[str, str]:
    commands = {}
    for line in PROCFILE.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and not line.startswith("#") and name.strip() not in SKIPPED_PROCESSES:
            commands[name.strip()] = command.strip()
    return commands


@dataclass
class Stack:
    env: BenchEnv
    logs: Path = LOGS
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Where each process's log stood when it was started: readiness is read after it.
    log_offsets: dict[str, int] = field(default_factory=dict)

    def start(self, *names: str) -> None:
        """Start Procfile processes (all but the simulator when no name is given) and wait
        until each is ready."""
        self.logs.mkdir(parents=True, exist_ok=True)
        commands = procfile_commands()
        for name in names or tuple(commands):
            if name in self.processes:
                continue
            log = open(self.logs / f"{name}.log", "ab")
            self.log_offsets[name] = log.tell()
            # Its own session: stopping it ends its children (uvicorn reloaders, celery pool).
            self.processes[name] = subprocess.Popen(
                ["bash", "-c", f"exec {commands[name]}"],
                cwd=ROOT,
                env={**os.environ, **self.env.variables()},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        for name in names or tuple(commands):
            self._ready_wait(name=name)

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def pids(self, name: str) -> list[int]:
        """The process and its children (the worker's pool processes)."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return []
        try:
            root = psutil.Process(process.pid)
            return [root.pid, *(child.pid for child in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def running(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is None]

    def _ready_wait(self, *, name: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited at start; see {self.logs / name}.log")
            if self._is_ready(name=name):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s; see {self.logs / name}.log")

    def _is_ready(self, *, name: str) -> bool:
        if name == "web":
            try:
                with urllib.request.urlopen(f"{self.env.web_url}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False
        if name == "worker":
            with open(self.logs / f"{name}.log", "rb") as log:
                log.seek(self.log_offsets[name])
                return b" ready." in log.read()
        return True
