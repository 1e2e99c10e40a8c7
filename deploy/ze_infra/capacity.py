"""What one instance carries on the SQS path, from the measured figures, and the scaling
targets derived from it: the web's requests per target and the workers' backlog per instance.

The figures live in one file, docs/performance/capacity.json, which `make bench ONLY=api,worker
ARGS="--broker sqs"` writes (bench/run.py `capacity_write`): the web's requests/s per gunicorn
sync process with the worker stopped (each request validates, checks the courier and sends one
SQS message, synchronously) and one worker's batches/s draining a full queue, both through
the local SQS server on a shared 2-core machine. A 2-vCPU instance is taken to carry at least
as much: the figures are lower bounds (the emulator answers slower than SQS, and the load
generator, PostgreSQL and Redis share the cores), and a batch of the bench carries more pings
than the app's uploads do, which costs the worker more per batch, not less.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

CAPACITY_FILE = Path(__file__).resolve().parents[2] / "docs" / "performance" / "capacity.json"

# gunicorn sync processes per web instance (WEB_CONCURRENCY, set by compute.py): one per vCPU.
WEB_PROCESSES_PER_INSTANCE = 2
# The share of an instance's measured capacity the web's target tracking aims at: room for
# the minutes a scale-out takes (an instance boots and passes its health check in 3-5 min).
WEB_TARGET_UTILISATION = 0.5


@dataclass(frozen=True)
class Capacity:
    source: str  # the command, date and commit that measured it
    web_requests_per_s_per_instance: float
    worker_batches_per_s_per_instance: float


def capacity_measured(path: Path = CAPACITY_FILE) -> Capacity:
    data = json.loads(path.read_text())
    return Capacity(
        source=f"`{data['command']}`, {data['measured_at']}, commit {data['commit']}, {data['cpus']} shared cores",
        web_requests_per_s_per_instance=data["web_requests_per_s_per_process"] * WEB_PROCESSES_PER_INSTANCE,
        worker_batches_per_s_per_instance=data["worker_batches_per_s"],
    )


def web_requests_per_target_per_minute(capacity: Capacity) -> int:
    """ALBRequestCountPerTarget's target: requests per instance per minute at the aimed share."""
    return math.floor(capacity.web_requests_per_s_per_instance * WEB_TARGET_UTILISATION * 60)


def worker_backlog_per_instance(capacity: Capacity, *, acceptable_latency_s: float) -> int:
    """AWS's SQS scaling guidance: acceptable backlog per instance = acceptable latency /
    average processing time per message. An instance works several messages at once (its
    Celery processes), so its time per message is 1 / its batches per second.
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-using-sqs-queue.html"""
    return max(1, math.floor(acceptable_latency_s * capacity.worker_batches_per_s_per_instance))
