"""The consumer's tracking page in a real browser (Debian's Chromium through Playwright):
it draws the state, then follows the order by polling the tracking link when no websocket
answers (this server is WSGI-only)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from orders.models import Order
from tests.support import OUTPUT
from tests.support.browser import chromium_launch, csp_violations_watch
from tests.support.builders import SAO_PAULO, OrderFactory
from tracking.models import OrderLastLocation

pytestmark = pytest.mark.processes  # Chromium


def other_sessions() -> set[int]:
    """Other sessions on the test database (a worker started by an earlier test keeps its own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def in_transit(courier):
    now = timezone.now()
    order = OrderFactory(courier=courier, status="in_transit", assigned_at=now, started_at=now)
    OrderLastLocation.objects.create(
        order=order, courier=courier, location=Point(SAO_PAULO[1], SAO_PAULO[0] - 0.01, srid=4326),
        recorded_at=now - dt.timedelta(seconds=5), updated_at=now, distance_to_destination_m=1100, eta_seconds=238,
    )  # fmt: skip
    return order


def deliver(order_id) -> None:
    """The courier delivers, from another thread: Playwright's sync API runs an event loop
    in the test's thread, where Django refuses (rightly) to run the ORM."""

    def run():
        now = timezone.now()
        Order.objects.filter(id=order_id).update(status="delivered", delivered_at=now, updated_at=now)
        connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)


def test_the_tracking_page_follows_the_order_until_delivery(live_server, in_transit):
    requested: list[str] = []
    before = other_sessions()
    with (
        override_settings(TRACKING_PAGE_POLL_S=0.3, MAP_TILE_URL=f"{live_server.url}/tiles/{{z}}/{{x}}/{{y}}.png"),
        sync_playwright() as p,
    ):
        browser = chromium_launch(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            page.on("request", lambda request: requested.append(request.url))
            blocked = csp_violations_watch(page)
            page.goto(f"{live_server.url}/t/{in_transit.tracking_code}")

            expect(page.locator("#status")).to_have_text("Saiu para entrega")
            expect(page.locator("#eta")).to_have_text("Chega em cerca de 4 minutos")
            expect(page.locator("#courier")).to_have_text("Entregador: Ana")
            expect(page.locator(".leaflet-marker-icon")).to_have_count(1)
            page.screenshot(path=str(OUTPUT / "tracking-page-in-transit.png"))

            deliver(in_transit.id)

            expect(page.locator("#status")).to_have_text("Pedido entregue", timeout=5000)
            expect(page.locator("#eta")).to_be_hidden()
            expect(page.locator("#courier")).to_be_hidden()
            expect(page.locator(".leaflet-marker-icon")).to_have_count(0)
            page.screenshot(path=str(OUTPUT / "tracking-page-delivered.png"))
            assert blocked == []
        finally:
            browser.close()
    assert other_sessions() <= before, "a connection opened by the test was left behind"

    assert any(url.endswith(f"/api/v1/track/{in_transit.tracking_code}") for url in requested)
    assert all(url.startswith(live_server.url) for url in requested), "the page loads nothing from elsewhere"
