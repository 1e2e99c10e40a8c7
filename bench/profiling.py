"""One sampling profile (py-spy) of a worker pool process under load, kept as collapsed
stacks plus a top-N summary of where its wall time goes (idle waits included: a task that
waits on the network is slow even when the CPU is free)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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


def profile_summarize(*, path: Path) -> dict[str, list[tuple[str, float]]]:
    """Two top-N lists, in % of all samples: functions on the stack (inclusive) and where
    the samples end (self). Stacks are cut below Celery's task tracer, so the lists speak of
    the task's own work; samples outside any task are counted as one line."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        # One line per function, whatever the line number it was on.
        frames = [LINE_NUMBER.sub(")", frame.strip()) for frame in stack.split(";")]
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
