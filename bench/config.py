"""How long and how much each measurement runs: a normal run, and a quick one for iteration."""

from __future__ import annotations

from dataclasses import dataclass

MEASUREMENTS = ("e2e", "api", "worker", "freshness", "reads", "naive", "bytes", "soak", "live")


@dataclass(frozen=True)
class Plan:
    quick: bool
    couriers: int = 50
    connections: int = 16
    batch: int = 50
    e2e_s: float = 60.0
    api_s: float = 30.0
    worker_batches: int = 1000
    freshness_s: float = 30.0
    freshness_rates: tuple[int, ...] = (1_000, 5_000)
    reads_s: float = 20.0
    naive_s: float = 30.0
    bytes_rows: int = 1_000_000
    soak_s: float = 600.0
    soak_rate: int = 500
    # Longest wait for the queue to drain after a load before the next measurement.
    drain_s: float = 120.0
    # Bodies are rendered before a run for at most this rate: a run that would go faster
    # ends early on its request count, which still measures its rate.
    max_pings_per_s: int = 20_000
    max_reads_per_s: int = 5_000
    profile_s: float = 20.0
    # The live side (bench/measurements/live.py): its own fleet, each courier pinging once a
    # period; the map watched for live_map_s, then live_sockets tracking-link sockets
    # following the orders of live_socket_couriers couriers, who ping meanwhile.
    live_couriers: int = 5_000
    live_period_s: float = 2.0
    live_map_s: float = 60.0
    live_sockets: int = 10_000
    live_socket_couriers: int = 2_000
    live_swarm_s: float = 120.0


NORMAL = Plan(quick=False)
QUICK = Plan(
    quick=True,
    e2e_s=15.0,
    api_s=8.0,
    worker_batches=150,
    freshness_s=8.0,
    reads_s=5.0,
    naive_s=8.0,
    bytes_rows=100_000,
    soak_s=60.0,
    drain_s=30.0,
    profile_s=5.0,
    live_couriers=600,
    live_map_s=30.0,
    live_sockets=2_000,
    # What this 2-core machine carries beside the sockets (about 60 single-ping requests a
    # second with everything on it): the delay then measures the live path, not a backlog.
    live_socket_couriers=100,
    live_swarm_s=40.0,
)
