"""The load generator: one process, one asyncio loop, aiohttp keep-alive connections, and
bodies rendered before the clock starts, so that the client costs little CPU and that cost
is reported. Run by `bench.load.load_run`; talks only to 127.0.0.1.

    python -m bench.loadgen SPEC.json RESULT.json
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from itertools import count

import aiohttp

from bench.load import LoadSpec

PROGRESS_EVERY_S = 5.0
# An open-loop run stops scheduling new requests when this many seconds' worth are still
# waiting for a connection: the server is far behind and more would only measure the client.
OPEN_BACKLOG_S = 10.0
WALK_DEG_PER_S = 4.5e-5  # ≈ 5 m/s


@dataclass
class Body:
    courier: int
    payload: bytes | None
    newest: float


@dataclass
class Run:
    spec: LoadSpec
    rows: list[tuple[float, float, float, int, int, float]] = field(default_factory=list)
    dropped: int = 0
    in_flight: int = 0


def courier_start(*, index: int) -> tuple[float, float]:
    """Where courier `index` is at `device_origin` (the fixtures put its order's action there)."""
    return -23.50 - 0.002 * index, -46.60 - 0.002 * index


def bodies_generate(*, spec: LoadSpec) -> list[list[Body]]:
    """Each courier's bodies in device-time order: courier c's n-th ping is recorded at
    device_start + n * step. Its position is a function of the device time (a slow walk
    north), so consecutive pings stay plausible across runs and never look like a jump."""
    couriers = len(spec.tokens)
    per_courier = -(-spec.max_requests // couriers)
    out: list[list[Body]] = []
    for c in range(couriers):
        lat0, lon0 = courier_start(index=c)
        bodies = []
        for k in range(per_courier):
            if not spec.batch:
                bodies.append(Body(courier=c, payload=None, newest=0.0))
                continue
            first = k * spec.batch
            pings = []
            for n in range(first, first + spec.batch):
                at = spec.device_start + n * spec.device_step_s
                recorded = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
                lat = lat0 + (at - spec.device_origin) * WALK_DEG_PER_S
                pings.append(
                    f'{{"event_id":"{os.urandom(16).hex()}","recorded_at":"{recorded}",'
                    f'"lat":{lat:.7f},"lon":{lon0:.7f},"accuracy_m":5.0,"speed_mps":5.0}}'
                )
            newest = spec.device_start + (first + spec.batch - 1) * spec.device_step_s
            bodies.append(Body(courier=c, payload=('{"pings":[' + ",".join(pings) + "]}").encode(), newest=newest))
        out.append(bodies)
    return out


async def request_send(*, run: Run, session: aiohttp.ClientSession, body: Body, scheduled: float) -> None:
    spec = run.spec
    url = spec.url
    if "{" in url:
        codes = spec.tracking_codes
        url = url.format(order_id=spec.order_ids[body.courier], tracking_code=codes[body.courier] if codes else "")
    headers = {"Authorization": f"Token {spec.tokens[body.courier]}"}
    if body.payload is not None:
        headers["Content-Type"] = "application/json"
    run.in_flight += 1
    started = time.time()
    try:
        async with session.request(spec.method, url, data=body.payload, headers=headers) as response:
            await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError):
        status = 0
    finally:
        run.in_flight -= 1
    run.rows.append((scheduled, started, time.time(), status, body.courier, body.newest))


async def closed_client(*, run: Run, session: aiohttp.ClientSession, queues: list[list[Body]], deadline: float) -> None:
    """Round-robin over this client's couriers; one request at a time."""
    cursors = [iter(q) for q in queues]
    while cursors and time.time() < deadline:
        for cursor in list(cursors):
            body = next(cursor, None)
            if body is None:
                cursors.remove(cursor)
                continue
            now = time.time()
            if now >= deadline:
                return
            await request_send(run=run, session=session, body=body, scheduled=now)


async def open_schedule(*, run: Run, session: aiohttp.ClientSession, bodies: list[list[Body]], deadline: float) -> None:
    """Start request k at t0 + k / rate, courier k mod N, whatever the answers."""
    spec = run.spec
    per_s = spec.rate / max(spec.batch, 1)
    cursors = [iter(b) for b in bodies]
    tasks: set[asyncio.Task] = set()
    t0 = time.time()
    for k in count():
        scheduled = t0 + k / per_s
        if scheduled >= deadline or k >= spec.max_requests:
            break
        await asyncio.sleep(max(0.0, scheduled - time.time()))
        body = next(cursors[k % len(cursors)], None)
        if body is None:
            break
        if run.in_flight > per_s * OPEN_BACKLOG_S:
            run.dropped += 1
            continue
        task = asyncio.create_task(request_send(run=run, session=session, body=body, scheduled=scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def progress_print(*, run: Run, began: float) -> None:
    batch = max(run.spec.batch, 1)
    seen = 0
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        done = len(run.rows)
        rate = (done - seen) * batch / PROGRESS_EVERY_S
        seen = done
        unit = "pings/s" if run.spec.batch else "req/s"
        print(
            f"    [{run.spec.name}] {time.time() - began:5.0f}/{run.spec.seconds:.0f} s  "
            f"{rate:9,.0f} {unit}  in flight {run.in_flight}",
            file=sys.stderr,
            flush=True,
        )


async def load_main(*, spec: LoadSpec) -> dict:
    generating = time.perf_counter()
    bodies = bodies_generate(spec=spec)
    generation_s = time.perf_counter() - generating
    run = Run(spec=spec)
    limit = spec.connections
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        usage0, began = resource.getrusage(resource.RUSAGE_SELF), time.time()
        deadline = began + spec.seconds
        reporter = asyncio.create_task(progress_print(run=run, began=began))
        if spec.mode == "open":
            await open_schedule(run=run, session=session, bodies=bodies, deadline=deadline)
        else:
            clients = [bodies[i :: spec.connections] for i in range(spec.connections)]
            await asyncio.gather(
                *(closed_client(run=run, session=session, queues=q, deadline=deadline) for q in clients if q)
            )
        reporter.cancel()
        usage1, wall = resource.getrusage(resource.RUSAGE_SELF), time.time() - began
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "generated": sum(len(b) for b in bodies),
        "generation_s": generation_s,
        "dropped": run.dropped,
        "requests": [value for row in run.rows for value in row],
    }


if __name__ == "__main__":
    spec_path, result_path = sys.argv[1], sys.argv[2]
    spec = LoadSpec(**json.loads(open(spec_path).read()))
    result = asyncio.run(load_main(spec=spec))
    with open(result_path, "w") as out:
        json.dump(result, out)
