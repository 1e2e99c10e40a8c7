"""The admin's order page (its trail map) and the API docs work in a real browser under the
Content-Security-Policy: nothing is blocked."""

from __future__ import annotations

from tests.support.browser import log_in
from tests.support.builders import UserFactory


def test_the_admin_trail_map_and_the_api_docs_run_under_the_policy(page, csp_violations, in_transit_order):
    UserFactory(username="root", is_staff=True, is_superuser=True, password="root-pass-123456")

    log_in(page, "root", "root-pass-123456")
    page.goto(f"/admin/orders/order/{in_transit_order.id}/change/")
    page.wait_for_selector("#trail-map.leaflet-container")
    page.wait_for_selector("#trail-map path.leaflet-interactive", state="attached")  # the destination marker

    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=15000)
    assert "/api/v1/locations" in page.inner_text(".swagger-ui")

    assert csp_violations == []
