"""What every measurement shares: the stack, the fleet, the samplers, the plan, and the
timeline the report's plots are drawn on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.config import Plan
from bench.fixtures import Fleet
from bench.load import LoadResult, LoadSpec, load_run
from bench.probes import (
    Sampler,
    broker_connect,
    pings_stored_count,
    queue_depth,
)
from bench.stack import BenchEnv, Stack


@dataclass
class Bench:
    env: BenchEnv
    stack: Stack
    fleet: Fleet
    plan: Plan
    sampler: Sampler
    workdir: Path
    # The report's plots folder (the profile is kept there too).
    out: Path
    results: dict[str, dict] = field(default_factory=dict)
    loads: dict[str, LoadResult] = field(default_factory=dict)
    timeline: list[tuple[str, float, float]] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str, what: str) -> Iterator[None]:
        began = time.time()
        print(f"==> [{name}] {what}", flush=True)
        try:
            yield
        finally:
            self.timeline.append((name, began, time.time()))
            print(f"    [{name}] done in {time.time() - began:.0f} s", flush=True)

    def ingest_spec(self, *, name: str, url: str, seconds: float, **overrides: object) -> LoadSpec:
        """Batches of pings from every courier, device clock starting now."""
        plan = self.plan
        spec = LoadSpec(
            name=name,
            url=self.env.web_url + url,
            method="POST",
            tokens=self.fleet.tokens,
            order_ids=self.fleet.order_ids,
            tracking_codes=self.fleet.tracking_codes,
            connections=plan.connections,
            seconds=seconds,
            batch=plan.batch,
            max_requests=int(plan.max_pings_per_s * seconds / plan.batch),
            device_start=time.time(),
            device_origin=self.fleet.device_origin,
        )
        for key, value in overrides.items():
            setattr(spec, key, value)
        return spec

    def load(self, spec: LoadSpec) -> LoadResult:
        # Rows are counted by device time from the run's start (see pings_stored_count).
        self.sampler.since = spec.device_start
        result = load_run(spec=spec, workdir=self.workdir)
        self.loads[spec.name] = result
        return result

    def queue_purge(self) -> None:
        broker_connect(env=self.env).purge()

    def drain_wait(self, *, expected_rows: int | None = None) -> float | None:
        """Wait until the pings queue is empty (and `expected_rows` stored); return when
        that happened (epoch s), or None if it did not within the plan's drain time."""
        broker = broker_connect(env=self.env)
        deadline = time.time() + self.plan.drain_s
        while time.time() < deadline:
            stored_ok = expected_rows is None or self.stored_now() >= expected_rows
            if queue_depth(broker=broker) == 0 and broker.unacked() == 0 and stored_ok:
                return time.time()
            time.sleep(0.2)
        return None

    def stored_now(self) -> int:
        with psycopg.connect(self.env.psycopg_dsn, autocommit=True) as conn:
            return pings_stored_count(conn=conn, courier_ids=self.fleet.courier_ids, since=self.sampler.since)
