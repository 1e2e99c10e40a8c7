"""The run's raw observations reduced to what the plots draw, kept in results.json so the
report can be drawn again without measuring again."""

from __future__ import annotations

import numpy as np

from bench.measurements.base import Bench

LATENCY_QUANTILES = (50, 90, 99, 99.9)


def series_build(*, bench: Bench) -> dict:
    t0 = min([s.at for s in bench.sampler.samples] or [0.0])
    return {
        "timeline": [(name, round(a - t0, 2), round(b - t0, 2)) for name, a, b in bench.timeline],
        "samples": [
            {
                "t": round(s.at - t0, 2),
                "queue": s.queue,
                "unacked": s.unacked,
                "stored": s.stored,
                "rss_mb": {k: round(v, 1) for k, v in s.rss_mb.items()},
                "cpu_cores": {k: round(v, 2) for k, v in s.cpu_cores.items()},
            }
            for s in bench.sampler.samples
        ],
        "loads": {name: load_series(result=result, t0=t0) for name, result in bench.loads.items()},
    }


def load_series(*, result, t0: float) -> dict:
    """Per second since the run's start: answered requests (ok) and the latency quantiles."""
    rows = result.ok
    if not len(rows):
        return {"start": 0.0, "per_second": [], "latency_ms": {}}
    start = float(result.requests[:, 0].min())
    seconds = np.floor(rows[:, 2] - start).astype(int)
    per_second = np.bincount(seconds).tolist()
    latency = (rows[:, 2] - rows[:, 0]) * 1000
    return {
        "start": round(start - t0, 2),
        "batch": result.spec.batch,
        "per_second": per_second,
        "latency_ms": {str(q): round(float(np.percentile(latency, q)), 1) for q in LATENCY_QUANTILES},
    }
