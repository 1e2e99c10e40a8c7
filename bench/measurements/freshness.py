"""Freshness at an offered (open-loop) rate: from the moment a batch was due to be sent
until the order's last location (the row GET /orders/{id}/location serves) shows the
batch's newest ping or a newer one. Also from the 202, the issue's original definition.
The watch polls every 10 ms, so values are rounded up by up to about 10 ms."""

from __future__ import annotations

import numpy as np

from bench.load import LoadResult
from bench.measurements.base import Bench
from bench.measurements.ingest import LOCATIONS
from bench.probes import LastLocationWatch

# Device times go through ISO text and PostgreSQL's microseconds: compare with this slack.
DEVICE_TIME_SLACK_S = 2e-6


def freshness_measure(bench: Bench) -> None:
    plan = bench.plan
    for rate in plan.freshness_rates:
        name = f"fresh-{rate}"
        with bench.phase(name, f"freshness at an offered {rate:,} pings/s (open loop), {plan.freshness_s:.0f} s"):
            bench.stack.start()
            bench.queue_purge()
            watch = LastLocationWatch(env=bench.env, order_ids=bench.fleet.order_ids)
            watch.start()
            spec = bench.ingest_spec(
                name=name,
                url=LOCATIONS,
                seconds=plan.freshness_s,
                mode="open",
                rate=float(rate),
                connections=64,
                max_requests=int(rate * plan.freshness_s / plan.batch) + 1,
            )
            result = bench.load(spec)
            drained = bench.drain_wait(expected_rows=len(result.ok) * plan.batch)
            watch.stop()
            from_send, from_202 = freshness_compute(result=result, changes=watch.changes)
            bench.results[name] = {
                **result.summary(),
                "offered_pings_per_s": rate,
                "drained": drained is not None,
                "batches": len(from_send),
                "not_visible": int(np.isinf(from_send).sum()),
                "send_to_visible_ms": _percentiles(from_send),
                "accepted_to_visible_ms": _percentiles(from_202),
                "samples_ms": [round(v, 1) for v in from_send.tolist() if np.isfinite(v)],
            }
            if not drained:
                bench.queue_purge()


def freshness_compute(*, result: LoadResult, changes: list[tuple[float, int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per accepted batch, in ms: (due to send → visible, 202 → visible); inf when never seen."""
    ok = result.ok
    seen = np.array(changes, dtype=float).reshape(-1, 3)
    from_send = np.full(len(ok), np.inf)
    from_202 = np.full(len(ok), np.inf)
    for order in np.unique(ok[:, 4]).astype(int):
        shown = seen[seen[:, 1] == order]
        shown = shown[np.argsort(shown[:, 0])]  # by time seen; device times rise with it
        rows = np.flatnonzero(ok[:, 4] == order)
        at = np.searchsorted(shown[:, 2], ok[rows, 5] - DEVICE_TIME_SLACK_S)
        visible = at < len(shown)
        seen_at = shown[np.minimum(at, len(shown) - 1), 0] if len(shown) else np.zeros(len(rows))
        from_send[rows[visible]] = (seen_at[visible] - ok[rows[visible], 0]) * 1000
        from_202[rows[visible]] = np.maximum(seen_at[visible] - ok[rows[visible], 2], 0) * 1000
    return from_send, from_202


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    """p50/p90/p99; a batch never seen counts as infinitely late (reported as None)."""
    if not len(values):
        return {}
    out = {}
    for q in (50, 90, 99):
        v = float(np.percentile(values, q, method="higher"))
        out[f"p{q}"] = round(v, 1) if np.isfinite(v) else None
    return out
