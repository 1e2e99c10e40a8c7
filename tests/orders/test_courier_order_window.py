"""A courier sees what the job needs: an order it finished keeps the consumer's name and
exact destination only for COURIER_ORDER_DETAIL_AFTER_END_S, and its list of orders goes
back COURIER_ORDERS_MAX_AGE_DAYS."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from orders.models import Order
from tests.support.builders import OrderFactory


def finished(courier, *, ended_ago: dt.timedelta, status: str = "delivered") -> Order:
    ended = timezone.now() - ended_ago
    field = "delivered_at" if status == "delivered" else "cancelled_at"
    return OrderFactory(
        courier=courier, status=status, consumer_name="Maria Secreta", external_id=f"ext-{status}-{ended_ago}",
        assigned_at=ended - dt.timedelta(minutes=30), **{field: ended},
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["delivered", "cancelled"])
def test_a_finished_order_loses_the_consumer_after_the_window(courier_api, courier, status):
    recent = finished(courier, ended_ago=dt.timedelta(minutes=10), status=status)
    old = finished(courier, ended_ago=dt.timedelta(hours=2), status=status)

    with override_settings(COURIER_ORDER_DETAIL_AFTER_END_S=3600):
        bodies = {o["id"]: o for o in courier_api.get("/api/v1/orders").json()["results"]}
        single = courier_api.get(f"/api/v1/orders/{old.id}").json()

    assert bodies[str(recent.id)]["consumer_name"] == "Maria Secreta"
    assert bodies[str(recent.id)]["destination"] is not None
    for body in (bodies[str(old.id)], single):
        assert body["consumer_name"] is None and body["destination"] is None and body["external_id"] is None
        assert body["status"] == status and body["destination_area"] == {"lat": -23.56, "lon": -46.66}
        assert "Secreta" not in str(body) and "-23.5614" not in str(body)


@pytest.mark.django_db
def test_the_backoffice_still_sees_a_finished_order_whole(staff_api, courier):
    old = finished(courier, ended_ago=dt.timedelta(days=2))

    body = staff_api.get(f"/api/v1/orders/{old.id}").json()

    assert body["consumer_name"] == "Maria Secreta" and body["destination"] is not None


@pytest.mark.django_db
def test_a_couriers_list_goes_back_only_so_many_days(courier_api, courier, staff_api):
    recent = finished(courier, ended_ago=dt.timedelta(days=1))
    old = finished(courier, ended_ago=dt.timedelta(days=9))
    Order.objects.filter(id=old.id).update(created_at=timezone.now() - dt.timedelta(days=9))
    stale_offer = OrderFactory()
    Order.objects.filter(id=stale_offer.id).update(created_at=timezone.now() - dt.timedelta(days=9))

    with override_settings(COURIER_ORDERS_MAX_AGE_DAYS=7):
        listed = {o["id"] for o in courier_api.get("/api/v1/orders").json()["results"]}
        everything = {o["id"] for o in staff_api.get("/api/v1/orders").json()["results"]}

    assert str(recent.id) in listed
    assert str(old.id) not in listed and str(stale_offer.id) not in listed
    assert {str(recent.id), str(old.id), str(stale_offer.id)} <= everything
