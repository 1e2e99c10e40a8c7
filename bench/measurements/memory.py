"""Memory over time: web and worker RSS are sampled once a second for the whole run; the
soak adds a long open-loop load at a rate the stack sustains and compares the first and
the last minute."""

from __future__ import annotations

import numpy as np

from bench.measurements.base import Bench
from bench.measurements.ingest import LOCATIONS


def soak_measure(bench: Bench) -> None:
    plan = bench.plan
    name = "soak"
    with bench.phase(name, f"soak at {plan.soak_rate:,} pings/s for {plan.soak_s / 60:.0f} min"):
        bench.stack.start()
        bench.queue_purge()
        spec = bench.ingest_spec(
            name=name,
            url=LOCATIONS,
            seconds=plan.soak_s,
            mode="open",
            rate=float(plan.soak_rate),
            max_requests=int(plan.soak_rate * plan.soak_s / plan.batch) + 1,
        )
        result = bench.load(spec)
        bench.results[name] = {**result.summary(), **memory_drift(bench=bench, start=spec.device_start)}
        bench.drain_wait()


def memory_drift(*, bench: Bench, start: float, minute_s: float = 60.0) -> dict:
    """Per process: mean RSS (MB) over the first and the last minute from `start`."""
    samples = [s for s in bench.sampler.samples if s.at >= start]
    if not samples:
        return {}
    end = samples[-1].at
    out = {}
    for role in ("web", "worker"):
        first = [s.rss_mb[role] for s in samples if role in s.rss_mb and s.at < start + minute_s]
        last = [s.rss_mb[role] for s in samples if role in s.rss_mb and s.at > end - minute_s]
        if first and last:
            out[f"{role}_rss_mb_first_minute"] = round(float(np.mean(first)), 1)
            out[f"{role}_rss_mb_last_minute"] = round(float(np.mean(last)), 1)
    return out
