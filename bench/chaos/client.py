"""The chaos load: couriers that behave like the app. Each courier records a fix every
`couriers / rate` seconds (a slow walk north, so every fix is plausible), sends its buffer
when it holds `batch` fixes, and keeps one request in flight: a 503, 429, any other 5xx, a
timeout or a refused connection means "outcome unknown", so the same body (same event ids) is
sent again after Retry-After, while new fixes wait in the buffer, as a phone would.

Every answer is written down: accepted pings (202, minus the indexes listed as rejected) go
to accepted.csv as they are answered, with the answer's time; pings whose outcome is never
known (given up after `give_up_s`) to unknown.csv; counts and answer times to summary.json.

    python -m bench.chaos.client SPEC.json OUTDIR
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from bench.loadgen import WALK_DEG_PER_S, courier_start

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_BATCH = 500
# A 503 should come quickly (the API gives up on the broker within about 2 s): slower
# answers are counted, and the scenario that cuts the broker off checks them.
SLOW_ANSWER_S = 5.0


@dataclass
class ClientSpec:
    url: str
    tokens: list[str]
    courier_ids: list[str]
    # Device time at which courier i stood at courier_start(i) (see bench.fixtures).
    device_origin: float
    rate: float
    batch: int
    seconds: float
    # After `seconds`, buffers are flushed; a body still unanswered this long after the end
    # is given up (its pings go to unknown.csv).
    give_up_s: float = 60.0
    request_timeout_s: float = 10.0
    # Event ids to use, one per batch, for the middle ping of the first batches sent after
    # `poison_after_s` (the scenario makes the database refuse them).
    poison_event_ids: list[str] = field(default_factory=list)
    poison_after_s: float = 3.0


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    retry_after_missing: int = 0
    slow_answers: int = 0
    max_answer_s: float = 0.0
    # Seconds since the start of the first and last retryable answer (the outage as seen).
    first_retry_at: float | None = None
    last_retry_at: float | None = None
    rejections: list = field(default_factory=list)


class Courier:
    def __init__(self, *, index: int, spec: ClientSpec, t0: float):
        self.index, self.spec = index, spec
        self.lat0, self.lon0 = courier_start(index=index)
        self.interval = len(spec.tokens) / spec.rate
        # Staggered, so the couriers' requests spread over the interval.
        self.next_at = t0 + self.interval * index / len(spec.tokens)
        self.buffer: list[tuple[str, float, float, float]] = []

    def record_until(self, *, now: float, end: float) -> None:
        """The fixes the phone took up to `now` (never after `end`)."""
        while self.next_at <= min(now, end):
            at = self.next_at
            lat = self.lat0 + (at - self.spec.device_origin) * WALK_DEG_PER_S
            self.buffer.append((os.urandom(16).hex(), at, round(lat, 7), self.lon0))
            self.next_at += self.interval


def body_render(pings: list[tuple[str, float, float, float]]) -> bytes:
    items = [
        f'{{"event_id":"{event_id}","recorded_at":"{dt.datetime.fromtimestamp(at, dt.UTC).isoformat()}",'
        f'"lat":{lat:.7f},"lon":{lon:.7f},"accuracy_m":5.0,"speed_mps":5.0}}'
        for event_id, at, lat, lon in pings
    ]
    return ('{"pings":[' + ",".join(items) + "]}").encode()


def uuid_text(hex_id: str) -> str:
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


class Client:
    def __init__(self, *, spec: ClientSpec, out: Path):
        self.spec, self.out = spec, out
        self.tally = Tally()
        self.poison = [p.replace("-", "") for p in spec.poison_event_ids]
        self.accepted_file = open(out / "accepted.csv", "w", buffering=1)  # noqa: SIM115 (line by line, read live)
        self.unknown_file = open(out / "unknown.csv", "w", buffering=1)  # noqa: SIM115

    async def post(self, *, session: aiohttp.ClientSession, courier: Courier, body: bytes):
        """One attempt: (status, parsed body or None, Retry-After header or None)."""
        headers = {"Authorization": f"Token {self.spec.tokens[courier.index]}", "Content-Type": "application/json"}
        started = time.time()
        try:
            async with session.post(self.spec.url, data=body, headers=headers) as response:
                text = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError):
            status, text, retry_after = 0, b"", None
        took = time.time() - started
        t = self.tally
        t.requests += 1
        t.statuses[status] += 1
        t.max_answer_s = max(t.max_answer_s, took)
        t.slow_answers += took > SLOW_ANSWER_S
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return status, parsed, retry_after

    async def courier_run(self, *, session: aiohttp.ClientSession, courier: Courier, t0: float) -> None:
        spec, t = self.spec, self.tally
        end = t0 + spec.seconds
        while True:
            now = time.time()
            courier.record_until(now=now, end=end)
            if now >= end and not courier.buffer:
                return
            if len(courier.buffer) < spec.batch and now < end:
                full_at = courier.next_at + (spec.batch - len(courier.buffer) - 1) * courier.interval
                await asyncio.sleep(max(0.0, min(full_at, end) - now))
                continue
            pings = courier.buffer[:MAX_BATCH]
            if self.poison and now >= t0 + spec.poison_after_s and len(pings) > 2:
                middle = len(pings) // 2
                pings[middle] = (self.poison.pop(0), *pings[middle][1:])
            body = body_render(pings)
            t.sent += len(pings)
            while True:
                status, parsed, retry_after = await self.post(session=session, courier=courier, body=body)
                if status not in RETRY_STATUSES and status != 0:
                    break
                elapsed = time.time() - t0
                t.first_retry_at = t.first_retry_at if t.first_retry_at is not None else elapsed
                t.last_retry_at = elapsed
                if status == 503 and retry_after is None:
                    t.retry_after_missing += 1
                if time.time() > end + spec.give_up_s:
                    break
                try:
                    delay = float(retry_after) if retry_after is not None else 1.0
                except ValueError:
                    delay = 1.0
                await asyncio.sleep(min(max(delay, 0.2), 10.0))
                courier.record_until(now=time.time(), end=end)
            self.settle(courier=courier, pings=pings, status=status, parsed=parsed)
            del courier.buffer[: len(pings)]

    def settle(self, *, courier: Courier, pings: list, status: int, parsed) -> None:
        t, courier_id, answered = self.tally, self.spec.courier_ids[courier.index], time.time()
        if status in RETRY_STATUSES or status == 0:
            t.unknown += len(pings)
            for event_id, *_ in pings:
                self.unknown_file.write(f"{courier_id},{uuid_text(event_id)}\n")
            return
        rejected = {}
        if isinstance(parsed, dict) and isinstance(parsed.get("rejected"), list):
            rejected = {r.get("index"): r for r in parsed["rejected"] if isinstance(r, dict)}
        if status != 202:
            # Anything but 202 accepts nothing; 400 lists why per index.
            rejected = rejected or {i: {"status": status, "body": str(parsed)[:200]} for i in range(len(pings))}
            rejected.update({i: {"status": status} for i in range(len(pings)) if i not in rejected})
        for index, (event_id, at, lat, lon) in enumerate(pings):
            if index in rejected:
                t.rejected += 1
                if len(t.rejections) < 20:
                    t.rejections.append({"event_id": uuid_text(event_id), "why": rejected[index]})
                continue
            t.accepted += 1
            recorded = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
            self.accepted_file.write(f"{courier_id},{uuid_text(event_id)},{recorded},{lat},{lon},{answered}\n")

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=len(self.spec.tokens) + 4)
        timeout = aiohttp.ClientTimeout(total=self.spec.request_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            t0 = time.time()
            couriers = [Courier(index=i, spec=self.spec, t0=t0) for i in range(len(self.spec.tokens))]
            await asyncio.gather(*(self.courier_run(session=session, courier=c, t0=t0) for c in couriers))
        self.accepted_file.close()
        self.unknown_file.close()
        summary = asdict(self.tally)
        summary["statuses"] = {str(k): v for k, v in self.tally.statuses.items()}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    spec = ClientSpec(**json.loads(Path(sys.argv[1]).read_text()))
    asyncio.run(Client(spec=spec, out=Path(sys.argv[2])).run())
