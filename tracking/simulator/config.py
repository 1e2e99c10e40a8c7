"""A run's settings and its counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


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

    def progress_line(self) -> str:
        return (
            f"{self.elapsed_s:6.0f}s  orders {self.orders_delivered} delivered / {self.orders_created} created, "
            f"{self.couriers_driving} on the road  pings {self.pings_sent} sent ({self.pings_rejected} rejected, "
            f"{self.duplicates_sent} dup, {self.late_sent} late)  {self.pings_per_s:.1f} pings/s  "
            f"errors {self.http_errors}"
        )

    def summary(self, *, config: SimulationConfig) -> str:
        target = "" if config.loop else f" of {config.orders}"
        return "\n".join(
            [
                "Summary",
                f"  orders      {self.orders_delivered} delivered{target}, {self.orders_created} created, "
                f"{self.orders_cancelled} cancelled, {self.orders_lost} lost",
                f"  pings       {self.pings_sent} sent in {self.batches_sent} batches: "
                f"{self.pings_accepted} accepted, {self.pings_rejected} rejected",
                f"  quirks      {self.duplicates_sent} duplicates, {self.late_sent} late, "
                f"{self.out_of_order_batches} out-of-order batches",
                f"  events      {self.events_sent} applied, {self.event_conflicts} conflicts",
                f"  http        {self.http_errors} errors, {self.retries} retries",
                f"  elapsed     {self.elapsed_s:.1f} s",
                f"  throughput  {self.pings_per_s:.1f} pings/s, {self.requests_per_s:.1f} requests/s",
            ]
        )
