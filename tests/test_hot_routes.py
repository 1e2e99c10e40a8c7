"""The hot routes (an order's location, the tracking link, a ping batch): queries per
request held constant (a query added to the token check, the permission check or the read
fails here; each figure is what the route needs: the token with its user and courier
profile in one query, then the route's own read, or both in one statement for an order's
location), and what they answer whatever the client asks for."""

from __future__ import annotations

import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support.builders import ping


def queries_of(call) -> list[str]:
    """The request's own queries: those of a task it sends (run in process, as the suite
    runs tasks) are left out."""
    call()  # the first call may warm caches (content types, the courier's token renewal)
    in_tasks: list[list[int]] = []

    def task_started(**_) -> None:
        in_tasks.append([len(queries.captured_queries)])

    def task_ended(**_) -> None:
        in_tasks[-1].append(len(queries.captured_queries))

    task_prerun.connect(task_started, weak=False)
    task_postrun.connect(task_ended, weak=False)
    try:
        with CaptureQueriesContext(connection) as queries:
            response = call()
    finally:
        task_prerun.disconnect(task_started)
        task_postrun.disconnect(task_ended)
    assert response.status_code < 300, response.content
    skipped = {i for start, end in in_tasks for i in range(start, end)}
    return [q["sql"] for i, q in enumerate(queries.captured_queries) if i not in skipped]


@pytest.mark.django_db
def test_a_courier_reading_its_order_location_costs_one_query(courier_api, in_transit_order):
    queries = queries_of(lambda: courier_api.get(f"/api/v1/orders/{in_transit_order.id}/location"))

    # The token (user, courier) and the order (courier, last location): one statement.
    assert len(queries) == 1, queries
    assert "couriers_apitoken" in queries[0] and "tracking_orderlastlocation" in queries[0]


@pytest.mark.django_db
def test_staff_reading_an_order_location_with_a_token_costs_one_query(staff_api, in_transit_order):
    queries = queries_of(lambda: staff_api.get(f"/api/v1/orders/{in_transit_order.id}/location"))

    assert len(queries) == 1, queries


@pytest.mark.django_db
def test_another_courier_is_refused_an_order_location_after_the_same_one_query(other_courier_api, in_transit_order):
    url = f"/api/v1/orders/{in_transit_order.id}/location"
    other_courier_api.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert other_courier_api.get(url).status_code == 404

    assert len(queries.captured_queries) == 1


@pytest.mark.django_db
def test_a_ping_batch_costs_one_query_whatever_its_size(courier_api, courier, in_transit_order):
    for size in (1, 50):
        body = {"pings": [ping(seconds_ago=size - i) for i in range(size)]}
        queries = queries_of(lambda body=body: courier_api.post("/api/v1/locations", body, format="json"))

        assert len(queries) == 1, queries  # the token (user, courier)


@pytest.mark.django_db
def test_a_ping_batch_naming_an_order_costs_two_queries_whatever_its_size(courier_api, courier, in_transit_order):
    for size in (1, 50):
        body = {"pings": [ping(seconds_ago=size - i, order_id=str(in_transit_order.id)) for i in range(size)]}
        queries = queries_of(lambda body=body: courier_api.post("/api/v1/locations", body, format="json"))

        assert len(queries) == 2, queries  # the token (user, courier), the courier's active orders


@pytest.mark.django_db
def test_the_tracking_link_costs_one_query(client, in_transit_order):
    queries = queries_of(lambda: client.get(f"/api/v1/track/{in_transit_order.tracking_code}"))

    assert len(queries) == 1, queries


@pytest.mark.django_db
def test_a_token_check_reads_the_token_table_once(courier_api):
    queries = queries_of(lambda: courier_api.get("/api/v1/orders"))

    # knox also read every other token of the user on each request (to drop expired ones):
    # logins and an hourly task do that now.
    assert sum("couriers_apitoken" in q for q in queries) == 1, queries


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*", ""])
def test_the_hot_routes_answer_json_whatever_the_accept_header(courier_api, in_transit_order, accept):
    """They have one renderer: DRF's negotiation (reading the query string, parsing Accept)
    took half of DRF's own time per request, to answer 406 to a client that wants no JSON."""
    courier_api.credentials(HTTP_AUTHORIZATION=courier_api._credentials["HTTP_AUTHORIZATION"], HTTP_ACCEPT=accept)
    for response in (
        courier_api.get(f"/api/v1/orders/{in_transit_order.id}/location"),
        courier_api.get(f"/api/v1/track/{in_transit_order.tracking_code}"),
        courier_api.post("/api/v1/locations", {"pings": [ping()]}, format="json"),
    ):
        assert response.status_code < 300 and response["Content-Type"] == "application/json", response.content


@pytest.mark.django_db
def test_a_ping_batch_that_is_not_json_is_still_415(courier_api):
    response = courier_api.post("/api/v1/locations", "pings=1", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
