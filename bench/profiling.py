"""Where the time goes under load: one sampling profile (py-spy) of a worker pool process,
kept as collapsed stacks plus a top-N summary of where its wall time goes (idle waits
included: a task that waits on the network is slow even when the CPU is free); for the
live side, the machine's CPU per role of the stack (`CoresSpent`) and CPU-only profiles of
the busiest server processes (`process_profile`)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from bench.measurements.base import Bench

TOP_N = 25
# Where a task's own frames start: Celery's tracer (build_tracer.<locals>.trace_task).
TASK_TRACERS = ("trace_task (celery/app/trace.py)",)
OUTSIDE_TASKS = "(outside any task: waiting for work, acknowledging)"
LINE_NUMBER = re.compile(r":\d+\)$")


@dataclass
class WorkerProfile:
    bench: Bench
    seconds: float
    output: Path
    process: subprocess.Popen | None = None
    timer: threading.Timer | None = field(default=None, repr=False)

    def begin(self) -> None:
        pids = self.bench.stack.pids("worker")
        if len(pids) < 2:
            return
        self.output.parent.mkdir(parents=True, exist_ok=True)
        # pids[1] is the first pool process: the one running tasks.
        args = ["py-spy", "record", "--pid", str(pids[1]), "--idle", "--format", "raw", "--rate", "200"]
        args += ["--duration", str(int(self.seconds)), "--output", str(self.output), "--nonblocking"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        if self.timer:
            self.timer.cancel()
        if self.process is None:
            return
        self.process.wait(timeout=self.seconds + 60)
        if self.output.exists():
            self.bench.results["profile"] = {
                "seconds": self.seconds,
                "top": profile_summarize(path=self.output),
                # Paths relative to the checkout: the report is read from any clone.
                "command": " ".join(self.process.args).replace(f"{Path.cwd()}/", ""),  # type: ignore[arg-type]
            }


def worker_profile_start(*, bench: Bench, delay_s: float, seconds: float) -> WorkerProfile | None:
    """Start recording `delay_s` from now (once the load is on), unless profiling is off."""
    if not bench.plan.profile_s or "worker" not in bench.stack.running():
        return None
    profile = WorkerProfile(bench=bench, seconds=seconds, output=bench.out / "worker-profile.collapsed.txt")
    profile.timer = threading.Timer(delay_s, profile.begin)
    profile.timer.start()
    return profile


def _stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """py-spy's raw (collapsed) stacks: each stack's frames, outermost first, one name per
    function whatever line it was on, and its sample count."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield [LINE_NUMBER.sub(")", frame.strip()) for frame in stack.split(";")], int(count)


def profile_summarize(*, path: Path) -> dict[str, list[tuple[str, float]]]:
    """Two top-N lists, in % of all samples: functions on the stack (inclusive) and where
    the samples end (self). Stacks are cut below Celery's task tracer, so the lists speak of
    the task's own work; samples outside any task are counted as one line."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, n in _stacks(path):
        total += n
        tracer = [i for i, frame in enumerate(frames) if frame.endswith(TASK_TRACERS)]
        frames = frames[tracer[-1] + 1 :] if tracer else []
        if not frames:
            frames = [OUTSIDE_TASKS]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(TOP_N)],
        "inclusive": [(frame, round(100 * n / total, 1)) for frame, n in inclusive.most_common(TOP_N)],
    }


ROLES = (("uvicorn", "ASGI (uvicorn)"), ("gunicorn", "REST (gunicorn)"), ("celery", "worker (celery)"),
         ("nginx", "nginx"), ("redis-server", "Redis"), ("postgres", "PostgreSQL"), ("bench.livegen", "load tools"),
         ("chromium", "browser"), ("py-spy", "profiler (py-spy)"), ("bench/run.py", "bench"))  # fmt: skip


def _role(process: psutil.Process) -> str | None:
    """The stack's role the process plays, else its name (whatever else kept the cores)."""
    try:
        line = " ".join(process.cmdline()) or process.name()
        return next((role for marker, role in ROLES if marker in line), process.name())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _cpu_by_process() -> dict[int, tuple[str, float]]:
    spent: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter():
        role = _role(process)
        if role is None:
            continue
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        spent[process.pid] = (role, times.user + times.system)
    return spent


def _machine() -> tuple[float, float]:
    times = psutil.cpu_times()
    return sum(times), times.idle


@dataclass
class CoresSpent:
    """Where the machine's CPU went over a window, per role of the stack (every process of
    this machine whose command line names it; any other process by its name; a process
    that ends inside the window is not counted): what limits a run when the cores are full."""

    started: float = 0.0
    before: dict[int, tuple[str, float]] = field(default_factory=dict)
    machine_before: tuple[float, float] = (0.0, 0.0)  # all CPU time, idle time

    def begin(self) -> None:
        self.started, self.before, self.machine_before = time.monotonic(), _cpu_by_process(), _machine()

    def finish(self) -> dict:
        seconds, after, machine = time.monotonic() - self.started, _cpu_by_process(), _machine()
        total, idle = machine[0] - self.machine_before[0], machine[1] - self.machine_before[1]
        by_role: Counter[str] = Counter()
        for pid, (role, spent) in after.items():
            by_role[role] += spent - self.before.get(pid, (role, 0.0))[1]
        return {
            "seconds": round(seconds, 1),
            "cores": psutil.cpu_count(),
            "busy_pct": round(100 * (1 - idle / total), 0) if total else None,
            "cores_by_role": {role: round(cpu / seconds, 2) for role, cpu in by_role.most_common()},
        }


def process_profile(*, pid: int, seconds: float, output: Path) -> subprocess.Popen:
    """py-spy on one process for `seconds`, CPU samples only (no idle waits), raw stacks."""
    output.parent.mkdir(parents=True, exist_ok=True)
    args = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--nonblocking"]
    args += ["--duration", str(int(seconds)), "--output", str(output)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


PROJECT = ("couriers/", "orders/", "tracking/", "infra/", "ze_tracking/")


def stacks_summarize(*, path: Path, top: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Two short lists, in % of the samples: where the CPU samples end (self), and the
    project's own functions most often on the stack (inclusive)."""
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for frames, n in _stacks(path) if path.exists() else []:
        total += n
        own[frames[-1]] += n
        for frame in {f for f in frames if f.rpartition("(")[2].startswith(PROJECT)}:
            ours[frame] += n
    if not total:
        return {"self": [], "project": []}
    return {
        "self": [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(top)],
        "project": [(frame, round(100 * n / total, 1)) for frame, n in ours.most_common(top)],
    }
