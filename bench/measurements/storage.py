"""Bytes on disk per stored ping, after at least `bytes_rows` pings: everything the ping
partitions take (heap, indexes, TOAST, free-space and visibility maps) over their row
count. The rows beyond what the load runs stored are written by the product's storage
service (`pings_store`) in bulk, as the worker writes them: enriched, with their order,
spread over the last day."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import psycopg

from bench.loadgen import courier_start
from bench.measurements.base import Bench

CHUNK = 5_000
SPREAD_S = 20 * 3600

# pg_total_relation_size = heap + indexes + TOAST (with its index) + every map fork.
SIZES_SQL = """
SELECT count(*) AS partitions,
       sum(pg_relation_size(c.oid)) AS heap,
       sum(pg_indexes_size(c.oid)) AS indexes,
       sum(pg_total_relation_size(c.oid)) AS total
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'tracking_ping'
"""


def bytes_measure(bench: Bench) -> None:
    target = bench.plan.bytes_rows
    with bench.phase("bytes", f"bytes per stored ping after {target:,} pings"):
        rows = _rows_count(bench=bench)
        _pings_fill(bench=bench, missing=max(target - rows, 0))
        live = _sizes(bench=bench)
        # A day's primary key is packed once the day is over (beat's ping_partitions_pack):
        # pack every day stored here, as the next day would, and measure again.
        from tracking.services.storage import ping_partitions_pack

        ping_partitions_pack(today=dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2))
        packed = _sizes(bench=bench)
        bench.results["bytes"] = {**packed, "live_bytes_per_ping": live["bytes_per_ping"]}


def _sizes(*, bench: Bench) -> dict:
    with psycopg.connect(bench.env.psycopg_dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tracking_ping")
        # sum() of bigints comes back as numeric (Decimal): plain ints for the arithmetic.
        partitions, heap, indexes, total = (int(v) for v in conn.execute(SIZES_SQL).fetchone())
        rows = conn.execute("SELECT count(*) FROM tracking_ping").fetchone()[0]
        # The event identities (tracking_pingevent) are held for the acceptance window only:
        # their bytes are counted per event they hold, apart from the ping's.
        conn.execute("VACUUM ANALYZE tracking_pingevent")
        events, events_total = conn.execute(
            "SELECT count(*), pg_total_relation_size('tracking_pingevent') FROM tracking_pingevent"
        ).fetchone()
    return {
        "event_identity_bytes_per_event": round(events_total / events, 1) if events else None,
        "rows": rows,
        "partitions": partitions,
        "heap_bytes_per_ping": round(heap / rows, 1),
        "index_bytes_per_ping": round(indexes / rows, 1),
        "other_bytes_per_ping": round((total - heap - indexes) / rows, 1),
        "bytes_per_ping": round(total / rows, 1),
    }


def _rows_count(*, bench: Bench) -> int:
    with psycopg.connect(bench.env.psycopg_dsn, autocommit=True) as conn:
        return int(conn.execute("SELECT count(*) FROM tracking_ping").fetchone()[0])


def _pings_fill(*, bench: Bench, missing: int) -> None:
    """Steps: per chunk, build the pings as enrichment would (each filed under its
    courier's order, with distance and ETA), then store them in one transaction."""
    from django.db import transaction

    from tracking.services.enrichment import EnrichedPing, OrderLeg
    from tracking.services.storage import pings_store

    fleet = bench.fleet
    couriers = [uuid.UUID(c) for c in fleet.courier_ids]
    orders = [uuid.UUID(o) for o in fleet.order_ids]
    now = dt.datetime.now(dt.UTC)
    began, written = time.monotonic(), 0
    while written < missing:
        size = min(CHUNK, missing - written)
        chunk = []
        for n in range(written, written + size):
            c = n % len(couriers)
            lat, lon = courier_start(index=c)
            # Oldest first, a second apart per courier, all before the load runs' times.
            recorded = now - dt.timedelta(seconds=SPREAD_S * (1 - n / missing))
            leg = OrderLeg(orders[c], "in_transit", 5_500.0 - n % 1000, 1_200 - n % 100, None)
            chunk.append(
                EnrichedPing(
                    event_id=uuid.uuid4(),
                    courier_id=couriers[c],
                    recorded_at=recorded,
                    received_at=recorded + dt.timedelta(milliseconds=800),
                    lat=lat + (n % 1000) * 1e-5,
                    lon=lon,
                    accuracy_m=5.0,
                    speed_mps=5.0,
                    heading_deg=0.0,
                    legs=[leg],
                )
            )
        with transaction.atomic():
            pings_store(pings=chunk)
        written += size
        if written % 100_000 < CHUNK or written == missing:
            rate = written / (time.monotonic() - began)
            print(f"    [bytes] {written:,}/{missing:,} pings written ({rate:,.0f}/s)", flush=True)
