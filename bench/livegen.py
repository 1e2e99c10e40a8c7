"""The live side's load tools, one asyncio process each, loopback only, bounded in time and
count, reporting their own CPU:

    python -m bench.livegen fleet SPEC.json RESULT.json   # couriers pinging the ingest API
    python -m bench.livegen swarm SPEC.json RESULT.json   # tracking-link sockets, arrival times

`fleet` drives every courier of the spec from one process: one ping per courier per
`period_s`, its device time the real clock, straight to `POST /api/v1/locations`; each 202
is kept as (courier index, recorded_at in ms, time of the 202). `swarm` holds one
`/ws/track/{code}/` socket per tracking code and keeps every position it is sent as
(order index, recorded_at in ms, arrival time), the state sent on connect aside. Joined on
the first two, they give the delay from a ping's 202 to its consumer's socket
(bench/measurements/live.py). `storm_at_s` drops every socket
at that second and reopens them all within `storm_spread_s`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import resource
import sys
import time
import uuid
from urllib.parse import urlsplit

import aiohttp

WALK_DEG_PER_S = 4.5e-5  # ≈ 5 m/s, as bench.loadgen walks
HANDSHAKE_TIMEOUT_S = 10


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the live load targets loopback only, not {host}")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fleet_run(spec: dict) -> dict:
    """Steps: spread the couriers' first pings over one period; each courier then pings once
    a period until `seconds` are over (at most `max_requests` in all)."""
    _loopback_only(spec["url"])
    tokens, period, seconds = spec["tokens"], spec["period_s"], spec["seconds"]
    budget = {"left": spec.get("max_requests", int(len(tokens) * seconds / period) + len(tokens))}
    acks: list[tuple[int, int, float]] = []
    errors: dict[str, int] = {}
    started, cpu0 = time.monotonic(), _cpu_s()
    connector = aiohttp.TCPConnector(limit=spec.get("connections", 64))
    timeout = aiohttp.ClientTimeout(total=30)

    async def courier(index: int, session: aiohttp.ClientSession) -> None:
        lat0, lon0 = spec["starts"][index]
        headers = {"Authorization": f"Token {tokens[index]}", "Content-Type": "application/json"}
        next_at = started + random.uniform(0, period)
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - started >= seconds or budget["left"] <= 0:
                return
            budget["left"] -= 1
            next_at += period
            now = time.time()
            walked = (now - spec["device_origin"]) * WALK_DEG_PER_S
            recorded = dt.datetime.fromtimestamp(now, dt.UTC)
            ping = {"event_id": str(uuid.uuid4()), "recorded_at": recorded.isoformat(), "lat": lat0 + walked,
                    "lon": lon0, "accuracy_m": 5.0, "speed_mps": 5.0}  # fmt: skip
            if spec.get("order_ids"):
                ping["order_id"] = spec["order_ids"][index]
            try:
                async with session.post(spec["url"], data=json.dumps({"pings": [ping]}), headers=headers) as r:
                    await r.read()
                    if r.status == 202:
                        acks.append((index, int(recorded.timestamp() * 1000), time.time()))
                    else:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(courier(i, session) for i in range(len(tokens))))
    wall = time.monotonic() - started
    return {"acks": acks, "errors": errors, "seconds": wall, "client_cpu_s": _cpu_s() - cpu0,
            "pings_per_s": len(acks) / wall if wall else 0.0}  # fmt: skip


async def swarm_run(spec: dict) -> dict:
    """Steps: open the sockets (at most `open_concurrency` handshakes at once); keep every
    position received until `seconds` are over; at `storm_at_s` (if set) drop them all and
    reopen each within `storm_spread_s`."""
    _loopback_only(spec["url"])
    codes, seconds = spec["codes"], spec["seconds"]
    arrivals: list[tuple[int, int, float]] = []
    errors: dict[str, int] = {}
    opened = {"now": 0, "peak": 0, "reopened": 0}
    started, cpu0 = time.monotonic(), _cpu_s()
    storm_at = spec.get("storm_at_s")
    gate = asyncio.Semaphore(spec.get("open_concurrency", 200))
    deadline = started + seconds
    connector = aiohttp.TCPConnector(limit=0)

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def hold(index: int, session: aiohttp.ClientSession, until: float, delay: float) -> bool:
        await asyncio.sleep(delay)
        try:
            async with gate:
                # Bounded: a server too busy to answer a handshake is an error, not a hang.
                ws = await asyncio.wait_for(
                    session.ws_connect(f"{spec['url']}/ws/track/{codes[index]}/", origin=spec["origin"]),
                    HANDSHAKE_TIMEOUT_S,
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            error(type(exc).__name__)
            return False
        opened["now"] += 1
        opened["peak"] = max(opened["peak"], opened["now"])
        order = spec["order_of"][index] if "order_of" in spec else index
        first = True  # the state sent on connect: no ping's delivery
        try:
            while (left := until - time.monotonic()) > 0:
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        error(f"closed {ws.close_code}")
                    break
                location = json.loads(msg.data).get("location")
                if location and not first:
                    at = dt.datetime.fromisoformat(location["recorded_at"])
                    arrivals.append((order, int(at.timestamp() * 1000), time.time()))
                first = False
        finally:
            opened["now"] -= 1
            try:
                await asyncio.wait_for(ws.close(), HANDSHAKE_TIMEOUT_S)
            except TimeoutError:
                error("close timed out")
        return True

    async def consumer(index: int, session: aiohttp.ClientSession) -> None:
        first_until = started + storm_at if storm_at else deadline
        if await hold(index, session, first_until, random.uniform(0, spec.get("open_spread_s", 5))) and storm_at:
            if await hold(index, session, deadline, random.uniform(0, spec.get("storm_spread_s", 10))):
                opened["reopened"] += 1

    async def count_open() -> list[tuple[float, int]]:
        samples = []
        while time.monotonic() < deadline:
            samples.append((round(time.monotonic() - started, 1), opened["now"]))
            await asyncio.sleep(1)
        return samples

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        sampler = asyncio.create_task(count_open())
        await asyncio.gather(*(consumer(i, session) for i in range(len(codes))))
        open_series = await sampler
    return {"arrivals": arrivals, "errors": errors, "peak_open": opened["peak"], "reopened": opened["reopened"],
            "open_series": open_series, "seconds": time.monotonic() - started,
            "client_cpu_s": _cpu_s() - cpu0}  # fmt: skip


def main(argv: list[str]) -> int:
    kind, spec_path, out_path = argv
    spec = json.loads(open(spec_path).read())
    run = {"fleet": fleet_run, "swarm": swarm_run}[kind]
    result = asyncio.run(run(spec))
    with open(out_path, "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
