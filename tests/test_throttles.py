"""Throttles: login by username and by address, ingest by courier, the tracking link by
code and address; every one answers 429 with Retry-After, and keys on the address the
trusted proxies saw, never on a header the client writes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.test import APIClient, APIRequestFactory

from infra.http.breakers import CACHE
from infra.http.throttles import TrackingAddressThrottle
from tests.support.api import client_for, token_post
from tests.support.builders import OrderFactory, ping
from tests.support.network import free_port
from tests.support.waiting import wait_for
from tracking.models import Ping

WRONG = "wrong-password"


def rates(**changes) -> override_settings:
    return override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, **changes})


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db
def test_login_is_limited_per_username_from_any_address(courier):
    with rates(login_username="3/min"):
        statuses = [
            token_post(courier.user.username, WRONG, client=APIClient(REMOTE_ADDR=f"198.51.100.{n}")).status_code
            for n in range(3)
        ]
        assert statuses == [400, 400, 400]
        # Even the right password waits: the attacker cannot tell a hit from the limit.
        assert_throttled(token_post(courier.user.username, client=APIClient(REMOTE_ADDR="198.51.100.99")))
        assert token_post("someone-else", WRONG, client=APIClient(REMOTE_ADDR="198.51.100.99")).status_code == 400


@pytest.mark.django_db
def test_login_is_limited_per_address_whatever_the_username(db):
    with rates(login_address="3/min"):
        client = APIClient(REMOTE_ADDR="198.51.100.7")
        assert [token_post(f"user-{n}", WRONG, client=client).status_code for n in range(3)] == [400, 400, 400]
        assert_throttled(token_post("user-4", WRONG, client=client))
        assert token_post("user-4", WRONG, client=APIClient(REMOTE_ADDR="198.51.100.8")).status_code == 400


@pytest.mark.django_db
def test_a_rotated_x_forwarded_for_does_not_bypass_the_limit(db):
    """No proxy is trusted locally (NUM_PROXIES = 0): the raw peer address is the key."""
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    with rates(login_address="3/min"):
        client = APIClient(REMOTE_ADDR="198.51.100.7")
        statuses = [
            client.post(
                "/api/v1/auth/token", {"username": f"u{n}", "password": "x"}, format="json",
                HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
            ).status_code
            for n in range(4)
        ]  # fmt: skip
        assert statuses[:3] == [400, 400, 400] and statuses[3] == 429


@pytest.mark.django_db
@override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 2})
def test_behind_two_proxies_the_client_is_the_second_address_from_the_right(db):
    with rates(login_address="2/min"):

        def attempt(forwarded: str):
            return APIClient(REMOTE_ADDR="10.0.0.1").post(
                "/api/v1/auth/token", {"username": "u", "password": "x"}, format="json", HTTP_X_FORWARDED_FOR=forwarded
            )

        # The client may prepend anything; the load balancer appends what it saw.
        assert attempt("1.1.1.1, 203.0.113.5, 10.0.0.2").status_code == 400
        assert attempt("2.2.2.2, 203.0.113.5, 10.0.0.2").status_code == 400
        assert_throttled(attempt("3.3.3.3, 203.0.113.5, 10.0.0.2"))
        assert attempt("3.3.3.3, 203.0.113.6, 10.0.0.2").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_login_pages_share_the_limits(client, courier, path):
    with rates(login_username="2/min"):
        for _ in range(2):
            assert client.post(path, {"username": courier.user.username, "password": "nope"}).status_code == 200
        assert_throttled(client.post(path, {"username": courier.user.username, "password": "nope"}))
        assert client.get(path).status_code == 200  # showing the form costs nothing


@pytest.mark.django_db
def test_ingest_is_limited_per_courier(courier, other_courier):
    with rates(ingest_courier="2/min"):
        api = client_for(courier.user)
        for _ in range(2):
            assert api.post("/api/v1/locations", {"pings": [ping()]}, format="json").status_code == 202
        assert_throttled(api.post("/api/v1/locations", {"pings": [ping()]}, format="json"))
        other = client_for(other_courier.user)
        assert other.post("/api/v1/locations", {"pings": [ping()]}, format="json").status_code == 202


@pytest.mark.django_db
def test_the_tracking_link_is_limited_per_code_and_address_and_more_generously_per_address(db):
    first, second = OrderFactory(), OrderFactory()
    with rates(tracking_link_code="2/min", tracking_link_address="5/min"):
        phone = APIClient(REMOTE_ADDR="203.0.113.7")
        assert [phone.get(f"/api/v1/track/{first.tracking_code}").status_code for _ in range(2)] == [200, 200]
        assert_throttled(phone.get(f"/api/v1/track/{first.tracking_code}"))
        # Another consumer behind the same carrier NAT follows another order.
        assert [phone.get(f"/api/v1/track/{second.tracking_code}").status_code for _ in range(2)] == [200, 200]
        # The address budget is spent (5 requests): guesses are throttled too.
        assert_throttled(phone.get("/api/v1/track/some-guess"))
        assert APIClient(REMOTE_ADDR="203.0.113.8").get(f"/api/v1/track/{first.tracking_code}").status_code == 200


# --- Redis out: every throttle fails closed, quickly (docs/SECURITY.md, "Throttles").

# The cache's timeout (REDIS_TIMEOUT_S) plus this process's overhead, well inside "about 2 s".
ANSWER_WITHIN_S = 1.5


def cache_at(port: int) -> override_settings:
    return override_settings(
        CACHES={"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    )


def timed(call) -> tuple:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def throttled_routes(*, courier, order) -> dict:
    """One request to each throttled route, as an attacker would send it."""
    anonymous, api = Client(), client_for(courier.user)
    return {
        "ingest": lambda: api.post("/api/v1/locations", {"pings": [ping()]}, format="json"),
        "login API": lambda: APIClient().post("/api/v1/auth/token", {"username": "u", "password": "x"}, format="json"),
        "login page": lambda: anonymous.post("/accounts/login/", {"username": "u", "password": "x"}),
        "admin login": lambda: anonymous.post("/admin/login/", {"username": "u", "password": "x"}),
        "tracking link": lambda: APIClient().get(f"/api/v1/track/{order.tracking_code}"),
        "tracking page": lambda: anonymous.get(f"/t/{order.tracking_code}"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("redis_state", ["closed", "silent"])
def test_while_redis_is_out_every_throttled_route_answers_503_with_retry_after(
    courier, order, silent_port, redis_state
):
    routes = throttled_routes(courier=courier, order=order)
    with cache_at(free_port() if redis_state == "closed" else silent_port):
        for name, call in routes.items():
            CACHE.reset()  # each route meets Redis itself, not the breaker another one tripped
            response, elapsed = timed(call)

            assert response.status_code == 503, (name, response.content)
            assert int(response["Retry-After"]) > 0, name
            assert elapsed < ANSWER_WITHIN_S, (name, elapsed)
    assert not Ping.objects.exists()


@pytest.mark.django_db
def test_after_redis_failed_requests_get_503_at_once_then_try_again(courier, silent_port):
    api = client_for(courier.user)
    post = lambda: api.post("/api/v1/locations", {"pings": [ping()]}, format="json")  # noqa: E731
    with cache_at(silent_port):
        first, waited = timed(post)
        answers = [timed(post) for _ in range(3)]

    assert first.status_code == 503 and waited >= settings.REDIS_TIMEOUT_S
    assert [r.status_code for r, _ in answers] == [503] * 3
    assert max(elapsed for _, elapsed in answers) < 0.1, answers
    # Redis answers again: after BREAKER_OPEN_S a request tries it and goes through.
    wait_for(lambda: post().status_code == 202, timeout=settings.BREAKER_OPEN_S + 5, message="a 202")


def redis_calls() -> dict[str, int]:
    """Commands Redis has run, by name (its own count, whoever sent them)."""
    stats = cache.client.get_client(write=True).info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


def redis_calls_during(call) -> dict[str, int]:
    before = redis_calls()
    call()
    after = redis_calls()
    # INFO is how this counts, not what the call sent.
    return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0) and name != "info"}


@pytest.mark.django_db
def test_parallel_requests_get_no_more_than_the_limit(db):
    """Each check counts and records in one atomic step: concurrent requests cannot all see
    the same count and each slip through."""
    factory = APIRequestFactory()
    with rates(tracking_link_address="20/min"):
        start = threading.Barrier(8)

        def attempts() -> list[bool]:
            start.wait()
            request = factory.get("/api/v1/track/x", REMOTE_ADDR="203.0.113.9")
            return [TrackingAddressThrottle().allow_request(request, None) for _ in range(10)]

        with ThreadPoolExecutor(8) as pool:
            allowed = [a for result in pool.map(lambda _: attempts(), range(8)) for a in result]

    assert sum(allowed) == 20


@pytest.mark.django_db
def test_a_routes_throttles_cost_one_redis_round_trip(courier, in_transit_order):
    link = APIClient(REMOTE_ADDR="203.0.113.10")
    url = f"/api/v1/track/{in_transit_order.tracking_code}"
    link.get(url)  # the first call loads the script into Redis

    # Two throttles (per code and address, per address), one script call, nothing else sent
    # (the commands a script runs inside Redis are counted under their own names).
    calls = redis_calls_during(lambda: link.get(url))
    assert calls.get("evalsha") == 1 and not {"get", "set", "setex"} & set(calls), calls

    api = client_for(courier.user)
    api.post("/api/v1/locations", {"pings": [ping()]}, format="json")
    calls = redis_calls_during(lambda: api.post("/api/v1/locations", {"pings": [ping()]}, format="json"))
    assert calls.get("evalsha") == 1, calls


@pytest.mark.django_db
def test_a_rate_of_zero_refuses_everything_with_a_full_wait(db):
    with rates(tracking_link_address="0/min"):
        assert_throttled(APIClient(REMOTE_ADDR="203.0.113.11").get("/api/v1/track/guess"))


@pytest.mark.django_db
def test_a_throttled_route_is_503_with_retry_after_while_redis_cannot_count(courier, in_transit_order):
    """A limit that cannot be counted refuses the request for now (never lets it through
    uncounted), and says when to come back: a 503, as for every dependency that is down."""
    closed = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    with override_settings(CACHES={"default": closed}):
        link = APIClient().get(f"/api/v1/track/{in_transit_order.tracking_code}")
        page = APIClient().get(f"/t/{in_transit_order.tracking_code}")
        batch = client_for(courier.user).post("/api/v1/locations", {"pings": [ping()]}, format="json")

    for response in (link, page, batch):
        assert response.status_code == 503, response.content
        assert int(response["Retry-After"]) > 0
