"""The bench's data, made through the product's own services: couriers with API tokens,
each carrying one order in transit. Django runs in the bench process on the bench database."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import dataclass, field

from bench.loadgen import courier_start
from bench.stack import BenchEnv

# Orders lie this far south of their courier, who walks north: never "arriving".
DESTINATION_OFFSET_DEG = 0.05


@dataclass
class Fleet:
    courier_ids: list[str]
    order_ids: list[str]
    tokens: list[str]
    # Device time at which every courier stood at `courier_start` (the load walks from there).
    device_origin: float
    # Each order's tracking code: what its consumer's phone polls.
    tracking_codes: list[str] = field(default_factory=list)


def django_setup(*, env: BenchEnv) -> None:
    """Point this process at the bench database and Redis db, then start Django."""
    os.environ.update(env.variables())
    import django

    django.setup()


def database_migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def courier_token_create(*, user_id: int) -> str:
    """The courier app's credential for the ingest API, made as a login makes it."""
    from django.contrib.auth import get_user_model

    from couriers.services import api_token_create

    return api_token_create(user=get_user_model().objects.get(id=user_id), device="bench")[1]


def fleet_create(*, couriers: int, prefix: str = "bench") -> Fleet:
    """Steps, per courier: create it, give it a token, create an order, then assign and
    start the order through the courier's actions (as the app would), at its start point."""
    from couriers.services import courier_create
    from orders.models import OrderEventType
    from orders.services import order_create, order_transition

    device_origin = time.time() - 120
    acted_at = dt.datetime.fromtimestamp(device_origin, dt.UTC)
    fleet = Fleet(courier_ids=[], order_ids=[], tokens=[], device_origin=device_origin)
    for index in range(couriers):
        lat, lon = courier_start(index=index)
        courier = courier_create(
            name=f"{prefix.title()} Courier {index}", username=f"{prefix}-{index}", password=uuid.uuid4().hex
        )
        order = order_create(consumer_name=f"Bench consumer {index}", lat=lat - DESTINATION_OFFSET_DEG, lon=lon)
        for offset, action in enumerate((OrderEventType.ASSIGNED, OrderEventType.STARTED)):
            order_transition(
                order_id=order.id,
                courier=courier,
                event_type=action,
                event_id=uuid.uuid4(),
                recorded_at=acted_at - dt.timedelta(seconds=2 - offset),
                lat=lat,
                lon=lon,
            )
        fleet.courier_ids.append(str(courier.id))
        fleet.order_ids.append(str(order.id))
        fleet.tracking_codes.append(order.tracking_code)
        fleet.tokens.append(courier_token_create(user_id=courier.user_id))
    return fleet
