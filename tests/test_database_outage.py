"""A database that cannot answer is a 503 the app retries after Retry-After, never a 500
(token authentication reads the database before any view runs)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from tests.support.builders import ping


def unreachable(execute, sql, params, many, context):
    raise OperationalError("connection to server at 10.0.3.7, port 5432 failed: Connection refused")


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, body", [
    ("get", "/api/v1/orders", None),
    ("post", "/api/v1/locations", {"pings": [ping()]}),
])  # fmt: skip
def test_a_request_while_the_database_cannot_answer_is_503_with_retry_after(courier_api, method, path, body):
    with connection.execute_wrapper(unreachable):
        response = getattr(courier_api, method)(path, body, format="json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "10.0.3.7" not in response.content.decode(), "no internal detail reaches the client"
