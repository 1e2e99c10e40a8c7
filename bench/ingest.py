"""Ingest benchmarks, on the local stack (`make bench`).

1. worker path: `ping_batch_record` (enrich + store + last-location upsert) on batches of
   500 pings, in this process: pings/s one worker thread can persist.
2. HTTP path: POST /api/v1/locations against a running server (BENCH_URL, default
   http://127.0.0.1:8000) from C client threads for D seconds, batches of B pings:
   requests/s, pings/s and latency percentiles.
3. delay: one ping posted, then the order's last location polled until it shows it
   (needs a worker running, as under `make run`).

Every loop is bounded in count and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ze_tracking.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.utils import timezone  # noqa: E402

from couriers.models import Courier  # noqa: E402
from couriers.services import api_token_create, courier_create  # noqa: E402
from orders.models import Order  # noqa: E402
from orders.services import order_create  # noqa: E402
from tracking.models import OrderLastLocation, Ping  # noqa: E402
from tracking.services.ingest import ping_batch_record  # noqa: E402

BASE = os.environ.get("BENCH_URL", "http://127.0.0.1:8000")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
BATCH = int(os.environ.get("BENCH_BATCH", "50"))


def bench_courier(n: int) -> Courier:
    username = f"bench-courier-{n}"
    courier = Courier.objects.filter(user__username=username).first()
    return courier or courier_create(name=f"Bench Courier {n}", username=username, password=uuid.uuid4().hex)


def pings(n: int, *, start: dt.datetime, lat: float = -23.56) -> list[dict]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "recorded_at": (start + dt.timedelta(seconds=i)).isoformat(),
            "lat": lat + i * 0.00001,
            "lon": -46.65,
            "accuracy_m": 5.0,
            "speed_mps": 8.0,
        }
        for i in range(n)
    ]


def worker_path(batches: int = 20, size: int = 500) -> None:
    courier = bench_courier(0)
    start = timezone.now() - dt.timedelta(hours=1)
    data = [pings(size, start=start + dt.timedelta(seconds=b * size)) for b in range(batches)]
    began = time.perf_counter()
    for batch in data:
        ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=batch)
    took = time.perf_counter() - began
    print(f"worker path: {batches} batches x {size} pings in {took:.2f} s = {batches * size / took:,.0f} pings/s "
          f"({took / batches * 1000:.1f} ms per batch)")  # fmt: skip


def http_path() -> None:
    couriers = [bench_courier(n) for n in range(1, CLIENTS + 1)]
    tokens = [api_token_create(user=c.user, device="bench-http")[1] for c in couriers]
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.monotonic() + SECONDS
    lock = threading.Lock()

    def client(token: str, index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        sent = 0
        while time.monotonic() < deadline and sent < 100_000:
            body = {"pings": pings(BATCH, start=timezone.now() - dt.timedelta(seconds=BATCH), lat=-23.5 - index * 0.01)}
            t0 = time.perf_counter()
            response = session.post(f"{BASE}/api/v1/locations", json=body, timeout=10)
            with lock:
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 202:
                    errors.append(response.status_code)
            sent += 1

    threads = [threading.Thread(target=client, args=(t, i)) for i, t in enumerate(tokens)]
    started_at = timezone.now()
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    # End to end: until the worker has stored every accepted ping (the queue has drained).
    expected = (n - len(errors)) * BATCH
    stored = 0
    drain_deadline = time.monotonic() + 600
    while time.monotonic() < drain_deadline:
        stored = Ping.objects.filter(courier__in=couriers, received_at__gte=started_at).count()
        if stored >= expected:
            break
        time.sleep(0.25)
    drained = time.perf_counter() - began
    print(f"end to end: {stored:,} of {expected:,} pings stored {drained:.1f} s after the first request = "
          f"{stored / drained:,.0f} pings/s sustained by web + worker")  # fmt: skip
    print(f"http path: {n} requests x {BATCH} pings from {CLIENTS} clients in {took:.1f} s = {n / took:,.0f} req/s, "
          f"{n * BATCH / took:,.0f} pings/s; latency p50 {latencies[n // 2] * 1000:.0f} ms, "
          f"p95 {latencies[int(n * 0.95)] * 1000:.0f} ms; non-202: {len(errors)}")  # fmt: skip


def delay(samples: int = 20) -> None:
    courier = bench_courier(999)  # its own courier: no jump from the HTTP run's positions
    token = api_token_create(user=courier.user, device="bench-latency")[1]
    Order.objects.filter(courier=courier, status__in=["assigned", "in_transit"]).update(status="cancelled")
    order = order_create(consumer_name="Bench", lat=-23.56, lon=-46.65)
    Order.objects.filter(id=order.id).update(status="in_transit", courier=courier, assigned_at=timezone.now())
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    results = []
    for _ in range(samples):
        ping = pings(1, start=timezone.now(), lat=-23.56 + len(results) * 0.00001)[0]
        t0 = time.perf_counter()
        assert session.post(f"{BASE}/api/v1/locations", json={"pings": [ping]}, timeout=10).status_code == 202
        t_accepted = time.perf_counter()
        wanted = dt.datetime.fromisoformat(ping["recorded_at"])
        while time.perf_counter() - t0 < 10:
            if OrderLastLocation.objects.filter(order=order, recorded_at=wanted).exists():
                results.append(time.perf_counter() - t_accepted)
                break
            time.sleep(0.005)
    results.sort()
    print(f"delay 202 -> last location visible: median {statistics.median(results) * 1000:.0f} ms, "
          f"max {results[-1] * 1000:.0f} ms over {len(results)}/{samples} pings")  # fmt: skip


if __name__ == "__main__":
    which = sys.argv[1:] or ["worker", "http", "delay"]
    if "worker" in which:
        worker_path()
    if "http" in which:
        http_path()
    if "delay" in which:
        delay()
