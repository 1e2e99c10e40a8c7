"""The simulator's side of the public HTTP API: login, answers, Retry-After."""

from __future__ import annotations

import datetime as dt
import time

import requests

HTTP_TIMEOUT_S = 10
# São Paulo has had no daylight saving since 2019: a fixed offset is its local time.
SAO_PAULO_TZ = dt.timezone(dt.timedelta(hours=-3), "BRT")


class ApiError(Exception):
    pass


def session_login(*, base_url: str, username: str, password: str, attempts: int = 5) -> requests.Session:
    """Log in as the app does (one token per simulated device); a throttled login (429) waits
    as long as Retry-After says, a few times."""
    session = requests.Session()
    for _ in range(attempts):
        response = session.post(
            f"{base_url}/api/v1/auth/token",
            json={"username": username, "password": password, "device": f"simulator-{username}"},
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code != 429:
            break
        time.sleep(retry_after_s(response, 1.0))
    if response.status_code != 200:
        raise ApiError(f"Login as {username} failed: {response.status_code} {response.text[:200]}")
    session.headers["Authorization"] = f"Token {response.json()['token']}"
    return session


def retry_after_s(response: requests.Response | None, default: float) -> float:
    try:
        return max(float(response.headers.get("Retry-After", default)), 0.1) if response is not None else default
    except ValueError:
        return default


def device_now() -> dt.datetime:
    return dt.datetime.now(SAO_PAULO_TZ)


def json_or_empty(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def checked(response: requests.Response, expected: int, what: str) -> dict:
    if response.status_code != expected:
        raise ApiError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json()


def healthz_wait(*, base_url: str, timeout: float) -> None:
    """Wait for the server to answer /healthz (it may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise ApiError(f"{base_url}/healthz did not answer within {timeout:.0f} s")
        time.sleep(0.5)
