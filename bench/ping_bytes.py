"""Bytes on disk per stored ping, heap and indexes, after PINGS realistic pings.

Stores the pings through `pings_store` (the worker's insert) in batches of 500 into the
database DATABASE_URL points at, then VACUUM ANALYZE (what autovacuum leaves) and sums the
relation sizes of every partition of `tracking_ping`. Run it against a scratch database:

    createdb -h 127.0.0.1 -p PORT -U postgres ze_bytes
    DATABASE_URL=postgis://postgres@127.0.0.1:PORT/ze_bytes python manage.py migrate
    DATABASE_URL=postgis://postgres@127.0.0.1:PORT/ze_bytes python bench/ping_bytes.py

The pings look like the app's: COURIERS couriers, one fix every 4 s, uploaded in batches of
50 a courier (so uploads interleave couriers), 80 % of them carrying an order in transit,
one in 20 with an `attributes` object, a few flagged implausible. Prints the sizes while
the day's partition takes pings, then once it is packed (`ping_partitions_pack`).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from tracking.services.enrichment import EnrichedPing, OrderLeg  # noqa: E402
from tracking.services.storage import pings_store  # noqa: E402

try:
    from tracking.services.storage import ping_partitions_pack  # noqa: E402
except ImportError:  # a schema from before packing existed
    ping_partitions_pack = None

PINGS = int(os.environ.get("PINGS", "1000000"))
COURIERS = int(os.environ.get("COURIERS", "200"))
UPLOAD = 50
STORE_BATCH = 500


def uploads(*, rng: random.Random, start: dt.datetime):
    """Yield each courier's upload of 50 fixes, interleaved the way they reach the server."""
    per_courier = PINGS // COURIERS
    couriers = [
        {
            "id": uuid.uuid4(),
            "order": uuid.uuid4(),
            "lat": -23.55 + rng.gauss(0, 0.05),
            "lon": -46.63 + rng.gauss(0, 0.05),
        }
        for _ in range(COURIERS)
    ]
    for upload in range(per_courier // UPLOAD):
        for courier in rng.sample(couriers, len(couriers)):
            batch = []
            for i in range(UPLOAD):
                n = upload * UPLOAD + i
                courier["lat"] += rng.gauss(0, 0.00008)
                courier["lon"] += rng.gauss(0, 0.00008)
                if n % 400 == 0:
                    courier["order"] = uuid.uuid4()
                distance = rng.uniform(0, 6000)
                recorded_at = start + dt.timedelta(seconds=4 * n + rng.uniform(0, 1))
                batch.append(
                    EnrichedPing(
                        event_id=uuid.uuid4(),
                        courier_id=courier["id"],
                        recorded_at=recorded_at,
                        received_at=start + dt.timedelta(seconds=4 * (upload + 1) * UPLOAD + rng.uniform(0, 2)),
                        lat=courier["lat"],
                        lon=courier["lon"],
                        accuracy_m=round(rng.uniform(3, 30), 1),
                        speed_mps=round(rng.uniform(0, 14), 2),
                        heading_deg=round(rng.uniform(0, 359.9), 1),
                        attributes={"battery": round(rng.uniform(0.1, 1), 2)} if rng.random() < 0.05 else {},
                        legs=[OrderLeg(courier["order"], "in_transit", round(distance, 1), round(distance / 6.5))]
                        if (n % 400) < 320
                        else [],
                        suspect_reason="implied_speed" if rng.random() < 0.003 else None,
                    )
                )
            yield batch


SIZES_SQL = """
SELECT count(*), sum(pg_relation_size(relid)), sum(pg_indexes_size(relid)),
       sum(pg_total_relation_size(relid))
FROM pg_partition_tree('tracking_ping') WHERE isleaf
"""
INDEX_SQL = """
SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
FROM pg_partition_tree('tracking_ping') t JOIN pg_index i ON i.indrelid = t.relid
WHERE t.isleaf AND pg_relation_size(i.indexrelid) > 8192 * 4
"""


def sizes_print(*, label: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tracking_ping")
        cursor.execute("SELECT count(*) FROM tracking_ping")
        rows = cursor.fetchone()[0]
        cursor.execute(SIZES_SQL)
        _, heap, indexes, total = cursor.fetchone()
        cursor.execute(INDEX_SQL)
        per_index = cursor.fetchall()
    print(f"{label}: rows {rows:,}: heap {heap / rows:.1f} B + indexes {indexes / rows:.1f} B = "
          f"{(heap + indexes) / rows:.1f} B per ping (all forks incl. fsm/vm: {total / rows:.1f} B)")  # fmt: skip
    for name, size in per_index:
        print(f"  {name}: {size / rows:.1f} B per ping")


def main() -> None:
    rng = random.Random(7)
    # Today 01:00 UTC: 1M pings of 200 couriers span about 5.5 h, inside today's partition.
    start = dt.datetime.now(dt.UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tracking_ping")
    began, stored, pending = time.perf_counter(), 0, []
    for batch in uploads(rng=rng, start=start):
        pending += batch
        if len(pending) >= STORE_BATCH:
            with transaction.atomic():
                stored += pings_store(pings=pending)
            pending = []
            if stored % 100_000 == 0:
                print(f"  {stored:,} pings stored, {time.perf_counter() - began:.0f} s", flush=True)
    if pending:
        with transaction.atomic():
            stored += pings_store(pings=pending)
    took = time.perf_counter() - began
    print(f"stored {stored:,} pings in {took:.0f} s ({stored / took:,.0f} pings/s through pings_store, batches of 500)")
    sizes_print(label="while the day takes pings")
    if ping_partitions_pack:
        ping_partitions_pack(today=start.date() + dt.timedelta(days=1))
        sizes_print(label="once the day is over and packed")


if __name__ == "__main__":
    main()
