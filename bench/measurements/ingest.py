"""Ingest throughput: the whole pipeline, the API alone, one worker alone, and the naive
baseline, all with batches of pings from the same load generator."""

from __future__ import annotations

import datetime as dt
import os
import time

import numpy as np

from bench.measurements.base import Bench
from bench.profiling import worker_profile_start

LOCATIONS = "/api/v1/locations"
NAIVE_LOCATIONS = "/bench/naive/locations"
NAIVE_MAX_PINGS_PER_S = 2_000


def e2e_measure(bench: Bench) -> None:
    """Closed loop against web + worker; accepted pings/s from the client, persisted
    pings/s from the rows stored during the load, the queue depth sampled throughout."""
    plan = bench.plan
    with bench.phase("e2e", f"end to end, {plan.connections} connections, {plan.e2e_s:.0f} s"):
        bench.stack.start()
        bench.queue_purge()
        spec = bench.ingest_spec(name="e2e", url=LOCATIONS, seconds=plan.e2e_s)
        profiler = worker_profile_start(bench=bench, delay_s=min(10.0, plan.e2e_s / 3), seconds=plan.profile_s)
        result = bench.load(spec)
        load_end = float(result.requests[:, 2].max()) if len(result.requests) else time.time()
        accepted_rows = len(result.ok) * plan.batch
        drained_at = bench.drain_wait(expected_rows=accepted_rows)
        if profiler is not None:
            profiler.finish()
        window = [s for s in bench.sampler.samples if spec.device_start <= s.at <= load_end]
        stored_in_window = window[-1].stored if window else 0
        depth = np.array([[s.at - window[0].at, s.queue] for s in window]) if window else np.zeros((0, 2))
        slope = float(np.polyfit(depth[:, 0], depth[:, 1], 1)[0]) if len(depth) > 2 else 0.0
        bench.results["e2e"] = {
            **result.summary(),
            "accepted_pings_per_s": round(result.pings_per_s, 1),
            "persisted_pings_per_s": round(stored_in_window / result.elapsed_s, 1) if result.elapsed_s else 0.0,
            "queue_depth_max": int(depth[:, 1].max()) if len(depth) else 0,
            "queue_depth_end": int(depth[-1, 1]) if len(depth) else 0,
            "queue_growth_pings_per_s": round(slope * plan.batch, 1),
            "drain_after_load_s": round(drained_at - load_end, 1) if drained_at else None,
            "load_start": spec.device_start,
            "load_end": load_end,
        }


def api_measure(bench: Bench) -> None:
    """Closed loop against the web alone: the worker is stopped, the queue only fills."""
    plan = bench.plan
    with bench.phase("api", f"API alone (worker stopped), {plan.connections} connections, {plan.api_s:.0f} s"):
        bench.stack.start("web")
        bench.stack.stop("worker")
        bench.queue_purge()
        result = bench.load(bench.ingest_spec(name="api", url=LOCATIONS, seconds=plan.api_s))
        bench.results["api"] = result.summary()
        bench.queue_purge()


def worker_measure(bench: Bench) -> None:
    """Fill the broker with task messages through the product's enqueue (apply_async),
    then start one worker (its configured concurrency) and time it until every row is
    stored. The rate runs from the first stored row, so worker start-up is left out."""
    from tracking.services.ingest import ping_batch_enqueue

    plan = bench.plan
    batches = plan.worker_batches
    with bench.phase("worker", f"one worker draining {batches} queued batches of {plan.batch}"):
        bench.stack.stop("worker")
        bench.queue_purge()
        device_start = time.time()
        bench.sampler.since = device_start
        received_at = dt.datetime.now(dt.UTC)
        couriers = len(bench.fleet.courier_ids)
        for b in range(batches):
            # Each courier's own device clock: its k-th batch holds its pings k*batch onward.
            courier, k = b % couriers, b // couriers
            ping_batch_enqueue(
                courier_id=bench.fleet.courier_ids[courier],
                received_at=received_at,
                pings=_pings(bench=bench, courier=courier, first=k * plan.batch, start=device_start),
            )
        expected = batches * plan.batch
        bench.stack.start("worker")
        first_at, first_rows, done_at, stored = None, 0, None, 0
        deadline = time.time() + max(plan.drain_s, 300.0)
        while time.time() < deadline:
            stored = bench.stored_now()
            now = time.time()
            if stored and first_at is None:
                first_at, first_rows = now, stored
            if stored >= expected:
                done_at = now
                break
            time.sleep(0.2)
        took = (done_at or time.time()) - (first_at or time.time())
        bench.results["worker"] = {
            "batches": batches,
            "pings": expected,
            "stored": stored,
            "drained": done_at is not None,
            "seconds": round(took, 2),
            "pings_per_s": round((stored - first_rows) / took, 1) if took > 0 else 0.0,
            "concurrency": _worker_concurrency(bench=bench),
        }


def naive_measure(bench: Bench) -> None:
    plan = bench.plan
    with bench.phase("naive", f"naive baseline, {plan.connections} connections, {plan.naive_s:.0f} s"):
        bench.stack.start()
        spec = bench.ingest_spec(name="naive", url=NAIVE_LOCATIONS, seconds=plan.naive_s, expect_status=201)
        # Bodies for ten times the naive rate measured before: enough, and quick to render.
        spec.max_requests = int(NAIVE_MAX_PINGS_PER_S * plan.naive_s / plan.batch)
        bench.results["naive"] = bench.load(spec).summary()


def _pings(*, bench: Bench, courier: int, first: int, start: float) -> list[dict]:
    """The pings the API would have accepted: what the load generator sends, validated."""
    from bench.loadgen import WALK_DEG_PER_S, courier_start

    lat0, lon0 = courier_start(index=courier)
    pings = []
    for n in range(first, first + bench.plan.batch):
        at = start + n * 0.001
        pings.append(
            {
                "event_id": os.urandom(16).hex(),
                "recorded_at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
                "lat": lat0 + (at - bench.fleet.device_origin) * WALK_DEG_PER_S,
                "lon": lon0,
                "accuracy_m": 5.0,
                "speed_mps": 5.0,
            }
        )
    return pings


def _worker_concurrency(*, bench: Bench) -> int:
    """Pool processes of the running worker (its children)."""
    return max(len(bench.stack.pids("worker")) - 1, 0)
