"""Factories and payloads: the rows and the requests tests are made of."""

from __future__ import annotations

import datetime as dt
import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.utils import timezone

from couriers.models import Courier
from orders.models import Order

# Avenida Paulista, São Paulo
SAO_PAULO = (-23.5614, -46.6559)
PASSWORD = "s3cret-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class CourierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Courier

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Courier Number{n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    consumer_name = "Maria Consumer"
    destination = factory.LazyFunction(lambda: Point(SAO_PAULO[1], SAO_PAULO[0], srid=4326))


def ping(
    *,
    seconds_ago: float = 0,
    at: dt.datetime | None = None,
    lat: float | None = None,
    lon: float | None = None,
    **extra,
) -> dict:
    """A valid ping as the app sends it, recorded `seconds_ago` (or `at`), near São Paulo's
    Paulista avenue by default."""
    return {
        "event_id": str(uuid.uuid4()),
        "recorded_at": (at or timezone.now() - dt.timedelta(seconds=seconds_ago)).isoformat(),
        "lat": SAO_PAULO[0] + 0.01 if lat is None else lat,
        "lon": SAO_PAULO[1] + 0.01 if lon is None else lon,
        "accuracy_m": 5.0,
        **extra,
    }


def pings_record(courier, pings: list[dict]) -> int:
    """A batch stored as the worker stores it (in this process); the number of pings stored."""
    from tracking.services.ingest import ping_batch_record

    return ping_batch_record(courier_id=courier.id, received_at=timezone.now(), pings=pings)


def order_event(
    event_type: str, *, lat: float = -23.56, lon: float = -46.65, seconds_ago: float = 0, event_id=None, **location
) -> dict:
    """The body of `POST /api/v1/orders/{id}/events` as the courier app sends it; `location`
    adds fields to the position (accuracy_m)."""
    return {
        "type": event_type,
        "event_id": str(event_id or uuid.uuid4()),
        "recorded_at": (timezone.now() - dt.timedelta(seconds=seconds_ago)).isoformat(),
        "location": {"lat": lat, "lon": lon, **location},
    }


def order_act(order, courier, event_type, *, seconds_ago=0.0, lat=-23.57, lon=SAO_PAULO[1], event_id=None):
    """A courier action applied through the service, as the events API applies it."""
    from orders.services import order_transition

    return order_transition(
        order_id=order.id,
        courier=courier,
        event_type=event_type,
        event_id=event_id or uuid.uuid4(),
        recorded_at=timezone.now() - dt.timedelta(seconds=seconds_ago),
        lat=lat,
        lon=lon,
    )
