"""Generated requests against every operation of the committed OpenAPI schema
(docs/openapi.yaml, which tests/test_health.py keeps equal to the code), sent in-process to
the WSGI app as a courier, as staff and anonymously (about 2,500 requests): no 5xx, and
every answer (status code, content type, headers, body) is one the schema documents.

Half of the generated ids are swapped for real ones (an order the courier carries, its
tracking code, the courier), so the requests reach past the 404 into the views."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ROOT
from tests.support.api import client_for
from tests.support.builders import CourierFactory, OrderFactory, UserFactory
from ze_tracking.wsgi import application

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.yaml")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Real ids of the current test's people, by path parameter name (see `people`).
KNOWN: dict[str, str] = {}


@schema.hook("map_path_parameters")
def real_ids_half_the_time(context, path_parameters: dict) -> dict:
    """About half the generated ids (by the parity of their bytes) become the real one of
    their kind; deterministic, so hypothesis can replay and shrink a failure."""
    if not path_parameters:
        return path_parameters
    return {
        name: KNOWN[name] if name in KNOWN and sum(str(value).encode()) % 2 == 0 else value
        for name, value in path_parameters.items()
    }


@pytest.fixture
def in_process():
    """The WSGI app runs in the test's thread, on the test's connection and transaction:
    like Django's test client, keep request signals from closing that connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield application
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def people(db):
    """A courier carrying an order in transit, and staff; their ids feed the path mapping."""
    courier = CourierFactory(name="Fuzz Courier")
    now = timezone.now()
    order = OrderFactory(
        courier=courier,
        status="in_transit",
        assigned_at=now - dt.timedelta(minutes=10),
        started_at=now - dt.timedelta(minutes=5),
    )
    KNOWN.update(order_id=str(order.id), courier_id=str(courier.id), tracking_code=order.tracking_code)
    staff = UserFactory(username=f"fuzz-staff-{uuid.uuid4().hex[:6]}", is_staff=True, is_superuser=True)
    return {"courier": client_for(courier.user), "staff": client_for(staff), "anonymous": None}


def auth_headers(client) -> dict:
    if client is None:
        return {}
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_is_documented_and_none_is_a_server_error(case, people, in_process):
    for client in people.values():
        case.call_and_validate(app=in_process, headers=auth_headers(client), checks=CHECKS)
