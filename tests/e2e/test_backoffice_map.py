"""A staff user watches the live map in a real browser while a courier's pings arrive."""

from __future__ import annotations

import time

from django.utils import timezone

from tests.support import OUTPUT
from tests.support.api import client_for
from tests.support.browser import log_in
from tests.support.builders import CourierFactory, UserFactory, ping, pings_record
from tests.support.roles import role_group
from tests.support.waiting import wait_for
from tracking.services.ingest import ping_batch_record


def click_on(page, kind: str, id) -> None:
    """Click where the map draws a courier or an order (one canvas: no element to click)."""
    at = page.evaluate(f"window.fleet.point('{kind}', '{id}')")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])


def test_a_posted_ping_moves_the_courier_marker_and_a_click_shows_the_trail(
    page, csp_violations, courier, in_transit_order
):
    UserFactory(username="ops", is_staff=True, password="ops-pass-123456").groups.add(role_group("Support"))
    courier.name = 'Ana <img id="injected" src="x">'  # any staff member can name a courier
    courier.save()
    pings_record(courier, [ping(seconds_ago=30, lat=-23.5700)])

    away = CourierFactory(user__password=None)
    ping_batch_record(courier_id=away.id, received_at=timezone.now(), pings=[ping(seconds_ago=600, lat=-23.58)])

    log_in(page, "ops", "ops-pass-123456")
    page.wait_for_function(f"window.fleet && window.fleet.courierLatLng('{courier.id}') !== null")
    page.wait_for_selector("#connection.live")
    # Drawn greyed out: no ping for longer than the stale limit.
    assert page.evaluate(f"[window.fleet.isStale('{courier.id}'), window.fleet.isStale('{away.id}')]") == [False, True]

    click_on(page, "courier", courier.id)
    page.wait_for_selector("#details h2")
    assert page.inner_text("#details h2") == courier.name
    assert page.locator("#injected").count() == 0  # names are text, never markup

    target = -23.5690
    started = time.monotonic()
    response = client_for(courier.user).post("/api/v1/locations", {"pings": [ping(lat=target)]}, format="json")
    assert response.status_code == 202
    wait_for(
        lambda: abs(page.evaluate(f"window.fleet.courierLatLng('{courier.id}').lat") - target) < 1e-6,
        timeout=10,
        message="the marker to reach the new position",
    )
    delay = time.monotonic() - started
    (OUTPUT / "browser-timings.txt").write_text(
        f"ping 202 -> marker at new position (incl. 0.8 s glide): {delay:.3f} s\n"
    )

    click_on(page, "order", in_transit_order.id)
    page.wait_for_selector("path.order-trail", state="attached")
    assert "2 pontos" in page.inner_text("#trail-info")
    assert page.url.endswith("/backoffice/")  # no reload happened
    page.screenshot(path=str(OUTPUT / "backoffice-map.png"))
    assert csp_violations == []


def test_the_map_sends_anonymous_users_to_the_login_and_refuses_couriers(page, csp_violations, courier):
    page.goto("/backoffice/")
    assert "/accounts/login/" in page.url

    courier.user.set_password("courier-pass-123456")
    courier.user.save()
    page.fill("#id_username", courier.user.username)
    page.fill("#id_password", "courier-pass-123456")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    response = page.goto("/backoffice/")
    assert response.status == 403
    assert csp_violations == []
