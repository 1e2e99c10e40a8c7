"""The consumer follows their order on /t/<code> in a real browser, live over the websocket."""

from __future__ import annotations

from tests.support import OUTPUT
from tests.support.api import client_for
from tests.support.builders import order_act, ping
from tests.support.waiting import wait_for

VIEWPORT = (390, 800)  # a phone


def courier_marker(page):
    return page.evaluate("(() => { const p = ZeTrack.courierLatLng(); return p && p.lat; })()")


def test_the_marker_shows_only_while_in_transit_and_moves_live(page, csp_violations, courier, order):
    order_act(order, courier, "assigned", seconds_ago=600, lat=-23.5750, lon=-46.6560)

    page.goto(f"/t/{order.tracking_code}")
    page.wait_for_selector("body[data-live=true]")
    assert courier_marker(page) is None  # assigned: no position for the consumer

    order_act(order, courier, "started", seconds_ago=300, lat=-23.5740, lon=-46.6560)
    wait_for(lambda: courier_marker(page) is not None, timeout=10, message="the courier marker")

    response = client_for(courier.user).post(
        "/api/v1/locations", {"pings": [ping(lat=-23.5700, lon=-46.6560)]}, format="json"
    )
    assert response.status_code == 202
    wait_for(lambda: abs((courier_marker(page) or 0) - -23.5700) < 1e-6, timeout=10, message="the marker to move")
    page.screenshot(path=str(OUTPUT / "tracking-page.png"))

    order_act(order, courier, "delivered", seconds_ago=0, lat=-23.5690, lon=-46.6560)
    wait_for(lambda: courier_marker(page) is None, timeout=10, message="the marker to disappear after delivery")
    assert "entregue" in page.inner_text("#status").lower()
    assert csp_violations == []
