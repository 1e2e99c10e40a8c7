"""Behind the real ASGI server (uvicorn, as `make run` starts it), a client that writes its
own X-Forwarded-For gets no fresh throttle budget: nothing in front of the local server is
trusted, so the peer address is the client."""

from __future__ import annotations

import requests


def test_a_rotated_x_forwarded_for_gets_no_fresh_budget_from_the_server(asgi_server, db):
    url = f"{asgi_server}/api/v1/track/{'G' * 32}"  # a guessed code: 404 until throttled

    statuses = [
        requests.get(url, headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=5).status_code for n in range(61)
    ]

    assert statuses[:60] == [404] * 60
    assert statuses[60] == 429
