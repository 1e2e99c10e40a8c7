"""One simulated courier: a state machine (idle -> assigning -> starting -> driving ->
delivering -> idle) ticked by the run, sending events and batched pings as the app does."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from tracking.simulator.client import HTTP_TIMEOUT_S, device_now, json_or_empty, retry_after_s
from tracking.simulator.config import SimulationConfig, SimulationStats
from tracking.simulator.geometry import Fix, path_plan, speed_pick

logger = logging.getLogger(__name__)


@dataclass
class CourierRun:
    """One simulated courier: its session, position, current order and send queues."""

    number: int
    courier_id: str
    session: requests.Session
    position: tuple[float, float]
    config: SimulationConfig
    rng: random.Random
    stats: SimulationStats = field(default_factory=SimulationStats)
    order_id: str | None = None
    stage: str = "idle"  # idle -> assigning -> starting -> driving -> delivering -> idle
    path: list[Fix] = field(default_factory=list)
    next_fix: int = 1
    trip_t0: dt.datetime | None = None
    outbox: list[dict] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    retry_at: float = 0.0
    event_ids: dict[str, str] = field(default_factory=dict)
    destination: tuple[float, float] = (0.0, 0.0)

    @property
    def url(self) -> str:
        return self.config.base_url

    def order_take(self, *, order_id: str, destination: tuple[float, float]) -> None:
        self.order_id, self.destination, self.stage, self.event_ids = order_id, destination, "assigning", {}

    def tick(self) -> None:
        """Steps: wait out a Retry-After; resend a refused batch; else move the order on
        (events), or send the pings that fell due since the last tick."""
        if time.monotonic() < self.retry_at:
            return
        if self.outbox:
            self._batch_send(self.outbox)
            return
        if self.stage == "assigning" and self._event_send("assigned"):
            self.stage = "starting"
        if self.stage == "starting" and self._event_send("started"):
            self._trip_start()
        if self.stage == "driving":
            self._drive()
        if self.stage == "delivering" and self._event_send("delivered"):
            self.stats.orders_delivered += 1
            self.order_id, self.stage = None, "idle"

    def _trip_start(self) -> None:
        speed = speed_pick(factor=self.config.speed, rng=self.rng)
        self.path = path_plan(
            start=self.position, end=self.destination, speed_mps=speed, step_s=self.config.ping_every_s, rng=self.rng
        )
        self.next_fix, self.trip_t0, self.stage = 1, device_now(), "driving"

    def _drive(self) -> None:
        """Pings due by now, plus the app's real-life quirks: a resend of an earlier ping, a
        ping held back to a later batch, a batch out of order."""
        trip_t0 = self.trip_t0
        assert trip_t0 is not None  # set when the trip started
        elapsed = (device_now() - trip_t0).total_seconds()
        batch = []
        while self.next_fix < len(self.path) and self.path[self.next_fix].t <= elapsed:
            fix = self.path[self.next_fix]
            self.next_fix += 1
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "recorded_at": (trip_t0 + dt.timedelta(seconds=fix.t)).isoformat(),
                    "lat": round(fix.lat, 7),
                    "lon": round(fix.lon, 7),
                    "accuracy_m": round(self.rng.uniform(3, 12), 1),
                    "speed_mps": round(fix.speed_mps, 2),
                    "heading_deg": round(fix.heading_deg, 1),
                    "attributes": {"battery": round(self.rng.uniform(0.2, 1.0), 2), "simulated": True},
                }
            )
            self.position = (fix.lat, fix.lon)
        arrived = self.next_fix >= len(self.path)
        late, self.held = self.held, []
        self.stats.late_sent += len(late)
        # Hold one ping back for the next batch (never the last one: it is flushed before
        # the delivery, so every ping of the trip reaches the server while the order is on).
        if batch and not arrived and self.rng.random() < self.config.quirk_rate:
            self.held.append(batch.pop(self.rng.randrange(len(batch))))
        batch = late + batch
        rate = self.config.quirk_rate
        if self.history and batch and self.rng.random() < rate:
            batch.append(dict(self.rng.choice(self.history)))
            self.stats.duplicates_sent += 1
        if len(batch) > 1 and self.rng.random() < rate:
            self.rng.shuffle(batch)
            self.stats.out_of_order_batches += 1
        if batch:
            self._batch_send(batch)
        if arrived and not self.outbox:
            self.stage = "delivering"

    def _batch_send(self, batch: list[dict]) -> None:
        """503 (broker down), 429 or a lost connection: keep the batch and resend it later,
        after Retry-After. Any other answer settles it."""
        response = None
        try:
            response = self.session.post(f"{self.url}/api/v1/locations", json={"pings": batch}, timeout=HTTP_TIMEOUT_S)
        except requests.RequestException as exc:
            logger.warning("courier %s: pings not sent (%s); will resend", self.number, exc.__class__.__name__)
        if response is None or response.status_code in (429, 502, 503, 504):
            self.stats.http_errors += 1
            self.stats.retries += 1
            self.outbox = batch
            self.retry_at = time.monotonic() + retry_after_s(response, self.config.interval_s)
            return
        self.outbox = []
        self.stats.batches_sent += 1
        self.stats.pings_sent += len(batch)
        body = json_or_empty(response)
        if response.status_code == 202 or (response.status_code == 400 and "rejected" in body):
            self.stats.pings_accepted += body.get("accepted", 0)
            self.stats.pings_rejected += len(body.get("rejected", []))
            if body.get("rejected"):
                logger.warning("courier %s: pings rejected: %s", self.number, str(body["rejected"])[:300])
        else:
            self.stats.http_errors += 1
            self.stats.pings_rejected += len(batch)
            logger.warning("courier %s: pings refused: %s %s", self.number, response.status_code, response.text[:200])
        self.history = (self.history + batch)[-20:]

    def _event_send(self, kind: str) -> bool:
        """True when the event is applied (201). A 409 (the order moved on without us) or
        another 4xx drops the order: log and go on. A 5xx or no answer: False, and the same
        event_id is sent again after Retry-After (the server answers a known id once)."""
        event_id = self.event_ids.setdefault(kind, str(uuid.uuid4()))
        body: dict[str, Any] = {
            "type": kind,
            "event_id": event_id,
            "recorded_at": device_now().isoformat(),
            "location": {"lat": round(self.position[0], 7), "lon": round(self.position[1], 7), "accuracy_m": 6.0},
        }
        response = None
        try:
            response = self.session.post(
                f"{self.url}/api/v1/orders/{self.order_id}/events", json=body, timeout=HTTP_TIMEOUT_S
            )
        except requests.RequestException as exc:
            logger.warning("courier %s: %s not sent (%s); will resend", self.number, kind, exc.__class__.__name__)
        if response is not None and response.status_code == 201:
            self.stats.events_sent += 1
            return True
        self.stats.http_errors += 1
        if response is not None and response.status_code < 500 and response.status_code != 429:
            self.stats.event_conflicts += response.status_code == 409
            self.stats.orders_lost += 1
            logger.warning(
                "courier %s: %s refused for order %s: %s %s",
                self.number, kind, self.order_id, response.status_code, response.text[:200],
            )  # fmt: skip
            self.order_id, self.stage = None, "idle"
            return False
        self.stats.retries += 1
        self.retry_at = time.monotonic() + retry_after_s(response, self.config.interval_s)
        return False
