"""Pings/s one worker process persists from a pre-filled queue.

Fills the `pings` queue with BATCHES messages of 50 pings through the web's own enqueue
(`ping_batch_enqueue`, the real `apply_async`), spread over COURIERS couriers that each carry
an order in transit, with no worker running; then starts one `celery worker` (one child
process) and times from its first stored ping until every ping is stored. Uses the database
and broker of `.local/env` (`source .local/env && python bench/worker_drain.py`).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import Point  # noqa: E402
from django.utils import timezone  # noqa: E402

from couriers.models import Courier  # noqa: E402
from couriers.services import courier_create  # noqa: E402
from orders.models import Order  # noqa: E402
from tracking.models import Ping  # noqa: E402
from tracking.services.ingest import ping_batch_enqueue  # noqa: E402
from ze_tracking.celery import app  # noqa: E402

BATCHES = int(os.environ.get("BATCHES", "1000"))
COURIERS = int(os.environ.get("COURIERS", "100"))
SIZE = 50
POOL = os.environ.get("POOL", "prefork")


def couriers_ready() -> list[Courier]:
    couriers = []
    for n in range(COURIERS):
        username = f"drain-courier-{n}"
        courier = Courier.objects.filter(user__username=username).first() or courier_create(
            name=f"Drain {n}", username=username, password=uuid.uuid4().hex
        )
        if not Order.objects.filter(courier=courier, status="in_transit").exists():
            Order.objects.create(
                consumer_name="Drain", destination=Point(-46.65, -23.56, srid=4326), status="in_transit",
                courier=courier, assigned_at=timezone.now() - dt.timedelta(hours=2),
                started_at=timezone.now() - dt.timedelta(hours=2),
            )  # fmt: skip
        couriers.append(courier)
    return couriers


def main() -> None:
    couriers = couriers_ready()
    app.connection_for_write().default_channel.queue_purge("pings")
    marker = timezone.now()
    # Device times in the recent past, 1 s apart per courier, moving a few metres a fix.
    start = marker - dt.timedelta(seconds=BATCHES * SIZE // COURIERS + 60)
    began = time.perf_counter()
    for b in range(BATCHES):
        courier = couriers[b % COURIERS]
        n0 = (b // COURIERS) * SIZE
        pings = [
            {
                "event_id": str(uuid.uuid4()),
                "recorded_at": start + dt.timedelta(seconds=n0 + i),
                "lat": -23.50 - (b % COURIERS) * 0.001 - (n0 + i) * 0.00003,
                "lon": -46.60,
                "accuracy_m": 5.0,
                "speed_mps": 3.3,
                "heading_deg": 180.0,
            }
            for i in range(SIZE)
        ]
        ping_batch_enqueue(courier_id=courier.id, received_at=marker, pings=pings)
    print(f"queued {BATCHES} batches x {SIZE} pings in {time.perf_counter() - began:.1f} s", flush=True)
    expected = BATCHES * SIZE
    stored = lambda: Ping.objects.filter(received_at=marker).count()  # noqa: E731
    (ROOT / ".local").mkdir(exist_ok=True)
    log = open(ROOT / ".local" / "worker_drain.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        ["celery", "-A", "ze_tracking", "worker", "-Q", "pings", "--pool", POOL, "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        first = None
        count = 0
        while time.monotonic() < deadline:
            count = stored()
            if count and first is None:
                first = (time.perf_counter(), count)
            if count >= expected:
                break
            time.sleep(0.1)
        took = time.perf_counter() - first[0]
        print(f"stored {count:,} of {expected:,} pings; {(count - first[1]) / took:,.0f} pings/s from the first stored "
              f"batch to the last ({took:.1f} s, one worker process, pool {POOL})")  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=30)


if __name__ == "__main__":
    main()
