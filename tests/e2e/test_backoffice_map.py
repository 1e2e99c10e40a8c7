"""A staff user watches the live map in a real browser while a courier's pings arrive."""

from __future__ import annotations

import time

from tests.support import OUTPUT
from tests.support.api import client_for
from tests.support.browser import log_in
from tests.support.builders import UserFactory, ping, pings_record
from tests.support.roles import role_group
from tests.support.waiting import wait_for


def test_a_posted_ping_moves_the_courier_marker_and_a_click_shows_the_trail(
    page, csp_violations, courier, in_transit_order
):
    UserFactory(username="ops", is_staff=True, password="ops-pass-123456").groups.add(role_group("Support"))
    courier.name = 'Ana <img id="injected" src="x">'  # any staff member can name a courier
    courier.save()
    pings_record(courier, [ping(seconds_ago=30, lat=-23.5700)])

    log_in(page, "ops", "ops-pass-123456")
    page.wait_for_selector(f'[data-courier-id="{courier.id}"]')
    page.wait_for_selector("#connection.live")
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

    page.click(f'[data-order-id="{in_transit_order.id}"]')
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
