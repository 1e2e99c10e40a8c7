"""The courier simulator: couriers that log in, take orders, drive and deliver through the
real HTTP API, as the app would.

Only the accounts touch the ORM (the API has no way to create a staff user or reset a
password); everything else is an HTTP call: staff token, couriers, orders, order events and
batched pings. Device times are the wall clock, so the server's rules (future limit,
plausibility speed, last-location guard) apply to the simulation exactly as to the app.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import math
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from tracking.geo import haversine_m

logger = logging.getLogger(__name__)

# Praça da Sé, São Paulo's kilometre zero.
SAO_PAULO_CENTER = (-23.5505, -46.6333)
# São Paulo has had no daylight saving since 2019: a fixed offset is its local time.
SAO_PAULO_TZ = dt.timezone(dt.timedelta(hours=-3), "BRT")
METRES_PER_DEGREE_LAT = 111_320.0
STAFF_USERNAME = "simulator"
COURIER_USERNAME = "sim-courier-{n}"
# Keep a margin under the server's plausibility limit: a ping above it is flagged and never
# moves the map, which would make a fast simulation look frozen.
SPEED_LIMIT_SHARE = 0.75
HTTP_TIMEOUT_S = 10
CONSUMERS = ["Maria", "João", "Ana", "Pedro", "Juliana", "Lucas", "Camila", "Rafael", "Beatriz", "Gabriel"]


@dataclass
class SimulationConfig:
    base_url: str = "http://127.0.0.1:8000"
    couriers: int = 3
    orders: int = 6
    speed: float = 1.0
    interval_s: float = 2.0
    ping_every_s: float = 1.0
    duration_s: float | None = None
    loop: bool = False
    trip_km: float = 2.0
    radius_km: float = 6.0
    quirk_rate: float = 0.1
    seed: int | None = None


@dataclass
class SimulationStats:
    orders_created: int = 0
    orders_delivered: int = 0
    orders_cancelled: int = 0
    orders_lost: int = 0
    couriers_driving: int = 0
    batches_sent: int = 0
    pings_sent: int = 0
    pings_accepted: int = 0
    pings_rejected: int = 0
    duplicates_sent: int = 0
    late_sent: int = 0
    out_of_order_batches: int = 0
    events_sent: int = 0
    event_conflicts: int = 0
    http_errors: int = 0
    retries: int = 0
    elapsed_s: float = 0.0

    def add(self, other: SimulationStats) -> None:
        for f in dataclasses.fields(self):
            if f.name != "elapsed_s":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def pings_per_s(self) -> float:
        return self.pings_sent / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return (self.batches_sent + self.events_sent) / self.elapsed_s if self.elapsed_s else 0.0


# --- Geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """One GPS position along a path, `t` seconds after the path starts."""

    t: float
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float


def point_offset(lat: float, lon: float, *, north_m: float, east_m: float) -> tuple[float, float]:
    return (
        lat + north_m / METRES_PER_DEGREE_LAT,
        lon + east_m / (METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))),
    )


def heading_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    north = (lat2 - lat1) * METRES_PER_DEGREE_LAT
    east = (lon2 - lon1) * METRES_PER_DEGREE_LAT * math.cos(math.radians(lat1))
    return math.degrees(math.atan2(east, north)) % 360.0


def speed_pick(*, factor: float, rng: random.Random) -> float:
    """A courier's cruising speed: 8-12 m/s times the simulation factor, capped under the
    server's plausibility limit."""
    limit = settings.TRACKING["MAX_SPEED_MPS"] * SPEED_LIMIT_SHARE
    return min(rng.uniform(8.0, 12.0) * factor, limit)


def path_plan(
    *, start: tuple[float, float], end: tuple[float, float], speed_mps: float, step_s: float, rng: random.Random
) -> list[Fix]:
    """Street-like path from `start` to `end`, sampled every `step_s` seconds at `speed_mps`.

    Steps: cut the trip into two to four legs that alternate north-south and east-west (city
    blocks on a grid aligned with the map); walk them at constant speed; add a little GPS
    noise to every fix but the first and the last, which are exactly `start` and `end`."""
    legs = rng.randint(2, 4)
    along_lat = rng.random() < 0.5
    lat_legs = (legs + along_lat) // 2
    lon_legs = legs - lat_legs
    lat_shares = _shares(lat_legs, rng)
    lon_shares = _shares(lon_legs, rng)
    corners = [start]
    lat, lon = start
    for _ in range(legs):
        if along_lat:
            lat += (end[0] - start[0]) * lat_shares.pop()
        else:
            lon += (end[1] - start[1]) * lon_shares.pop()
        corners.append((lat, lon))
        along_lat = not along_lat
    corners[-1] = end  # no rounding drift at the door

    lengths = [haversine_m(*a, *b) for a, b in zip(corners, corners[1:], strict=False)]
    total = sum(lengths)
    # Noise proportional to the step keeps every implied speed within 20 % of the speed.
    noise_m = min(3.0, speed_mps * step_s * 0.1)
    step_m = speed_mps * step_s
    fixes = [Fix(0.0, start[0], start[1], 0.0, heading_deg(*start, *end))]
    leg, leg_start_m = 0, 0.0
    distance = step_m
    while distance < total - step_m / 2:
        while distance > leg_start_m + lengths[leg]:
            leg_start_m += lengths[leg]
            leg += 1
        a, b = corners[leg], corners[leg + 1]
        share = (distance - leg_start_m) / max(lengths[leg], 1e-9)
        lat, lon = point_offset(
            a[0] + (b[0] - a[0]) * share,
            a[1] + (b[1] - a[1]) * share,
            north_m=rng.uniform(-noise_m, noise_m),
            east_m=rng.uniform(-noise_m, noise_m),
        )
        fixes.append(Fix(distance / speed_mps, lat, lon, speed_mps, heading_deg(*a, *b)))
        distance += step_m
    fixes.append(Fix(max(total / speed_mps, fixes[-1].t + step_s / 2), end[0], end[1], 0.0, fixes[-1].heading_deg))
    return fixes


def _shares(count: int, rng: random.Random) -> list[float]:
    """`count` positive parts that add up to 1 (how much of a direction each leg covers)."""
    weights = [rng.uniform(0.2, 1.0) for _ in range(count)]
    return [w / sum(weights) for w in weights]


def destination_pick(
    *, near: tuple[float, float], trip_km: float, radius_km: float, rng: random.Random
) -> tuple[float, float]:
    """A consumer a short trip from the courier (the store nearest the consumer dispatches),
    kept within `radius_km` of São Paulo's centre."""
    distance_m = rng.uniform(0.3, 1.0) * trip_km * 1000
    bearing = rng.uniform(0, 2 * math.pi)
    if haversine_m(*near, *SAO_PAULO_CENTER) > radius_km * 1000 - distance_m:
        bearing = math.radians(heading_deg(*near, *SAO_PAULO_CENTER)) + rng.uniform(-1.0, 1.0)
    return point_offset(*near, north_m=distance_m * math.cos(bearing), east_m=distance_m * math.sin(bearing))


def start_pick(*, radius_km: float, rng: random.Random) -> tuple[float, float]:
    distance_m = math.sqrt(rng.random()) * radius_km * 700
    bearing = rng.uniform(0, 2 * math.pi)
    return point_offset(
        *SAO_PAULO_CENTER, north_m=distance_m * math.cos(bearing), east_m=distance_m * math.sin(bearing)
    )


# --- Accounts (ORM: the API cannot create staff or reset passwords) ------------------------


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
        staff, _ = users.get_or_create(username=STAFF_USERNAME, defaults={"is_staff": True})
        staff.is_staff = True
        staff.is_active = True
        staff.set_password(secret)
        staff.save()
        users.bulk_update(existing, ["password"])
    return secret


# --- HTTP ---------------------------------------------------------------------------------


class ApiError(Exception):
    pass


def session_login(*, base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{base_url}/api/v1/auth/token", json={"username": username, "password": password}, timeout=HTTP_TIMEOUT_S
    )
    if response.status_code != 200:
        raise ApiError(f"Login as {username} failed: {response.status_code} {response.text[:200]}")
    session.headers["Authorization"] = f"Token {response.json()['token']}"
    return session


def retry_after_s(response: requests.Response | None, default: float) -> float:
    try:
        return max(float(response.headers.get("Retry-After", default)), 0.1) if response is not None else default
    except ValueError:
        return default


def device_now() -> dt.datetime:
    return dt.datetime.now(SAO_PAULO_TZ)


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
        elapsed = (device_now() - self.trip_t0).total_seconds()
        batch = []
        while self.next_fix < len(self.path) and self.path[self.next_fix].t <= elapsed:
            fix = self.path[self.next_fix]
            self.next_fix += 1
            batch.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "recorded_at": (self.trip_t0 + dt.timedelta(seconds=fix.t)).isoformat(),
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
        body = _json_or_empty(response)
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
        body = {
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


def _json_or_empty(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _checked(response: requests.Response, expected: int, what: str) -> dict:
    if response.status_code != expected:
        raise ApiError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json()


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
        response = self.staff.get(f"{self.url}/api/v1/couriers", timeout=HTTP_TIMEOUT_S)
        existing = {c["username"]: c["id"] for c in _checked(response, 200, "couriers")}
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
            courier_id = _checked(created, 201, f"create {username}")["id"]
        session = session_login(base_url=self.url, username=username, password=password)
        # Start where the courier was last seen: a trip starting elsewhere would be an
        # implausible jump, flagged by the server.
        response = staff.get(f"{self.url}/api/v1/couriers/{courier_id}/location", timeout=HTTP_TIMEOUT_S)
        location = _checked(response, 200, "courier location").get("location")
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
            for order in _checked(response, 200, "orders")["results"]:
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
            body = {
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
