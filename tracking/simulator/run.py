"""A simulation run. Steps: accounts, staff login, couriers (created or reused), their
logins, start positions and leftovers; then ticks until every order is delivered, the
duration is over or `stop` is set; then cancel what is still on the road."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q

from tracking.simulator.client import HTTP_TIMEOUT_S, checked, session_login
from tracking.simulator.config import SimulationConfig, SimulationStats
from tracking.simulator.courier import CourierRun
from tracking.simulator.geometry import destination_pick, start_pick

logger = logging.getLogger(__name__)

STAFF_USERNAME = "simulator"
# What the simulator does as the order system and an operations lead, and no more.
STAFF_PERMS = [
    ("couriers", "add_courier"), ("couriers", "view_courier"),
    ("orders", "add_order"), ("orders", "view_order"), ("orders", "cancel_order"),
]  # fmt: skip
COURIER_USERNAME = "sim-courier-{n}"
CONSUMERS = ["Maria", "João", "Ana", "Pedro", "Juliana", "Lucas", "Camila", "Rafael", "Beatriz", "Gabriel"]


# Accounts go through the ORM: the API cannot create staff or reset passwords.
def courier_password(*, secret: str, username: str) -> str:
    return hmac.new(secret.encode(), username.encode(), hashlib.sha256).hexdigest()[:32]


def simulator_accounts_prepare(*, couriers: int) -> str:
    """Steps: choose the run's secret (SIMULATOR_STAFF_PASSWORD, else a random one); make
    sure the `simulator` staff user exists with it; give existing simulated couriers the
    password derived from it (hashed on a few threads: hashing is slow by design). New
    couriers are created later through the API."""
    secret = os.environ.get("SIMULATOR_STAFF_PASSWORD") or secrets.token_urlsafe(24)
    users = get_user_model().objects
    existing = list(users.filter(username__in=[COURIER_USERNAME.format(n=n) for n in range(1, couriers + 1)]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(
            pool.map(lambda user: make_password(courier_password(secret=secret, username=user.username)), existing)
        )
    for user, hashed in zip(existing, hashes, strict=True):
        user.password = hashed
    with transaction.atomic():
        # A superuser: the simulator runs only locally (it is not in the production bundle),
        # and its account must work whatever permission rows a test database holds.
        staff, _ = users.get_or_create(username=STAFF_USERNAME, defaults={"is_staff": True})
        staff.is_staff = True
        staff.is_superuser = True
        staff.is_active = True
        staff.set_password(secret)
        staff.save()
        wanted = Q()
        for app_label, codename in STAFF_PERMS:
            wanted |= Q(content_type__app_label=app_label, codename=codename)
        staff.user_permissions.set(Permission.objects.filter(wanted))
        users.bulk_update(existing, ["password"])
    return secret


class Simulation:
    """Steps of a run: accounts, staff login, couriers (created or reused), their logins,
    start positions and leftovers; then ticks until every order is delivered, the duration
    is over or `stop` is set; then cancel what is still on the road."""

    def __init__(self, *, config: SimulationConfig, stop: threading.Event | None = None):
        self.config = config
        self.config.base_url = config.base_url.rstrip("/")
        self.stop = stop or threading.Event()
        self.rng = random.Random(config.seed)
        self.stats = SimulationStats()
        self.couriers: list[CourierRun] = []
        self.run_id = uuid.uuid4().hex[:6]
        self.started = time.monotonic()

    @property
    def url(self) -> str:
        return self.config.base_url

    def run(self, *, progress: Callable[[SimulationStats], None] | None = None) -> SimulationStats:
        self._prepare()
        self.started = time.monotonic()
        workers = min(8, max(1, len(self.couriers)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="courier") as pool:
            while not self.stop.is_set():
                tick_started = time.monotonic()
                self._orders_hand_out()
                list(pool.map(CourierRun.tick, self.couriers))
                snapshot = self.snapshot()
                if progress:
                    progress(snapshot)
                if self._finished(snapshot):
                    break
                if self.config.duration_s and time.monotonic() - self.started >= self.config.duration_s:
                    break
                self.stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - tick_started)))
        result = self.snapshot()
        self._leftovers_cancel([c.order_id for c in self.couriers if c.order_id])
        result.orders_cancelled = self.stats.orders_cancelled
        return result

    def snapshot(self) -> SimulationStats:
        total = dataclasses.replace(self.stats)
        for courier in self.couriers:
            total.add(courier.stats)
        total.couriers_driving = sum(c.stage != "idle" for c in self.couriers)
        total.elapsed_s = time.monotonic() - self.started
        return total

    def _finished(self, snapshot: SimulationStats) -> bool:
        return not self.config.loop and snapshot.orders_created >= self.config.orders and not snapshot.couriers_driving

    def _prepare(self) -> None:
        """Accounts, staff login, then each courier (created or reused, logged in, placed
        where it was last seen, leftovers collected) on a few threads: logins hash passwords
        on purpose slowly, and many couriers would otherwise take minutes to set up."""
        secret = simulator_accounts_prepare(couriers=self.config.couriers)
        self.staff = session_login(base_url=self.url, username=STAFF_USERNAME, password=secret)
        response = self.staff.get(f"{self.url}/api/v1/couriers", params={"limit": 500}, timeout=HTTP_TIMEOUT_S)
        existing = {c["username"]: c["id"] for c in checked(response, 200, "couriers")["results"]}
        plans = [
            (n, secret, existing.get(COURIER_USERNAME.format(n=n)), self.rng.random(), self._random_start())
            for n in range(1, self.config.couriers + 1)
        ]
        with ThreadPoolExecutor(max_workers=min(4, len(plans)), thread_name_prefix="courier-setup") as pool:
            prepared = list(pool.map(lambda plan: self._courier_prepare(*plan), plans))
        self.couriers = [courier for courier, _ in prepared]
        self._leftovers_cancel([order_id for _, leftovers in prepared for order_id in leftovers])

    def _random_start(self) -> tuple[float, float]:
        return start_pick(radius_km=self.config.radius_km, rng=self.rng)

    def _courier_prepare(
        self, n: int, secret: str, courier_id: str | None, seed: float, fallback: tuple[float, float]
    ) -> tuple[CourierRun, list[str]]:
        staff = requests.Session()  # sessions are not shared between threads
        staff.headers.update(self.staff.headers)
        username = COURIER_USERNAME.format(n=n)
        password = courier_password(secret=secret, username=username)
        if courier_id is None:
            created = staff.post(
                f"{self.url}/api/v1/couriers",
                json={"name": f"Simulated Courier {n}", "username": username, "password": password},
                timeout=HTTP_TIMEOUT_S,
            )
            courier_id = checked(created, 201, f"create {username}")["id"]
        session = session_login(base_url=self.url, username=username, password=password)
        # Start where the courier was last seen: a trip starting elsewhere would be an
        # implausible jump, flagged by the server.
        response = staff.get(f"{self.url}/api/v1/couriers/{courier_id}/location", timeout=HTTP_TIMEOUT_S)
        location = checked(response, 200, "courier location").get("location")
        courier = CourierRun(
            number=n,
            courier_id=courier_id,
            session=session,
            position=(location["lat"], location["lon"]) if location else fallback,
            config=self.config,
            rng=random.Random(seed),
        )
        return courier, self._active_orders(session=session, courier_id=courier_id)

    def _active_orders(self, *, session: requests.Session, courier_id: str) -> list[str]:
        """Orders a previous, interrupted run left on the road."""
        found = []
        for status in ("assigned", "in_transit"):
            response = session.get(f"{self.url}/api/v1/orders", params={"status": status}, timeout=HTTP_TIMEOUT_S)
            for order in checked(response, 200, "orders")["results"]:
                if (order.get("courier") or {}).get("id") == courier_id:
                    found.append(order["id"])
        return found

    def _leftovers_cancel(self, order_ids: list[str]) -> None:
        for order_id in order_ids:
            try:
                response = self.staff.post(f"{self.url}/api/v1/orders/{order_id}/cancel", timeout=HTTP_TIMEOUT_S)
            except requests.RequestException as exc:
                logger.warning("order %s not cancelled: %s", order_id, exc.__class__.__name__)
                continue
            if response.status_code == 200:
                self.stats.orders_cancelled += 1

    def _orders_hand_out(self) -> None:
        """Couriers take orders in turn: each idle one gets a new order near where it is."""
        for courier in self.couriers:
            if courier.stage != "idle" or courier.retry_at > time.monotonic():
                continue
            if not self.config.loop and self.stats.orders_created >= self.config.orders:
                return
            destination = destination_pick(
                near=courier.position, trip_km=self.config.trip_km, radius_km=self.config.radius_km, rng=self.rng
            )
            body: dict[str, Any] = {
                "consumer_name": self.rng.choice(CONSUMERS),
                "destination": {"lat": round(destination[0], 7), "lon": round(destination[1], 7)},
                "external_id": f"SIM-{self.run_id}-{self.stats.orders_created + 1}",
            }
            try:
                response = self.staff.post(f"{self.url}/api/v1/orders", json=body, timeout=HTTP_TIMEOUT_S)
            except requests.RequestException as exc:
                logger.warning("order not created (%s); will retry", exc.__class__.__name__)
                self.stats.http_errors += 1
                return
            if response.status_code != 201:
                logger.warning("order not created: %s %s", response.status_code, response.text[:200])
                self.stats.http_errors += 1
                return
            self.stats.orders_created += 1
            courier.order_take(order_id=response.json()["id"], destination=destination)


def simulation_run(
    *,
    config: SimulationConfig,
    stop: threading.Event | None = None,
    progress: Callable[[SimulationStats], None] | None = None,
) -> SimulationStats:
    return Simulation(config=config, stop=stop).run(progress=progress)
