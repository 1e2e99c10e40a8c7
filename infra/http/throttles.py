"""DRF throttles counted in Redis, with their rates in `settings.THROTTLE_RATES` (read at
each request, so one setting changes them everywhere). Every one answers 429 with
Retry-After. The client address is the one the trusted proxies saw (`NUM_PROXIES`), never
an X-Forwarded-For entry the client wrote.

A throttle that cannot count fails closed: while its Redis is out the request is refused
with 503 and Retry-After, never let through uncounted (a login could otherwise be guessed
at without limit by whoever can slow Redis down). See docs/SECURITY.md, "Throttles"."""

from __future__ import annotations

import hashlib
import math
import os
import time
import unicodedata
from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django_redis.exceptions import ConnectionInterrupted
from redis import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from infra.http.api import ServiceUnavailable
from infra.http.breakers import CACHE


class ThrottleUnavailable(ServiceUnavailable):
    """The throttles' Redis is out: the request is refused, not counted. 503."""

    detail = "This cannot be done right now. Retry later."


# DRF's sliding window (at most N requests in any `duration`), checked and recorded in one
# step inside Redis: the requests of a window are a sorted set scored by time. DRF reads a
# key's list of times, then writes it back: two round trips per throttle, and concurrent
# requests all read the same count and all pass (docs/PERFORMANCE.md). A route's throttles
# go in one call (several keys: fine on a Redis without cluster mode, as deployed). Per
# key: "" when the request counts, else the time of the oldest request that must leave the
# window for one more to fit; a refused request is not recorded in that key (as in DRF).
# Times are strings: Lua would truncate numbers to integers.
SLIDING_WINDOWS = """
local now = tonumber(ARGV[1])
local answers = {}
for i, key in ipairs(KEYS) do
  local window, limit = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    answers[i] = ''
  else
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    answers[i] = oldest[2] or ARGV[1]
  end
end
return answers
"""


# A DRF Request, a plain Django HttpRequest (the login pages) or the websocket's stand-in: each
# has what `ident()` reads (method, data or POST, META, user, resolver_match).
ThrottledRequest = Any


class RateThrottle(SimpleRateThrottle):
    """A throttle whose rate is `settings.THROTTLE_RATES[scope]` and whose key is `ident()`
    (None: the request is not counted by this throttle), counted by `throttles_check`."""

    scope: str
    # Set by SimpleRateThrottle.__init__ from the rate; `oldest` by `throttles_check`.
    num_requests: int
    duration: int
    oldest: float

    def get_rate(self) -> str:
        rate: str = settings.THROTTLE_RATES[self.scope]
        return rate

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        ident = self.ident(request, view)
        if ident is None:
            return None
        # Hashed: keys stay short and carry no user input into Redis.
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(ident.encode()).hexdigest()[:32]}

    def allow_request(self, request: ThrottledRequest, view: APIView | None) -> bool:
        return not throttles_check(request=request, view=view, throttles=[self])

    def wait(self) -> float:
        """Seconds until the window has room again."""
        return max(self.duration - (self.now - self.oldest), 0.0)


def throttles_check(*, request: ThrottledRequest, view: APIView | None, throttles: list[RateThrottle]) -> list[float]:
    """Count the request against every throttle in one Redis call; return how long each
    throttle that refused it asks to wait (empty: allowed)."""
    counted: list[tuple[RateThrottle, str]] = []
    for throttle in throttles:
        key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
        if key is not None:
            counted.append((throttle, key))
    if not counted:
        return []
    now = time.time()
    args: list[str | int] = [repr(now), f"{now!r}:{os.urandom(6).hex()}"]
    for throttle, _ in counted:
        args += [throttle.duration, throttle.num_requests]
    # Within REDIS_TIMEOUT_S, then at once while the cache's breaker is open.
    if not CACHE.allows():
        raise ThrottleUnavailable()
    try:
        # The cache's own keys (prefix and version), as the cache API would write them.
        # redis-py sends the script's digest (EVALSHA), and the script when Redis lost it.
        # `client` is django-redis's, which the cache API's stubs do not know.
        client = cache.client.get_client(write=True)  # type: ignore[attr-defined]
        script = client.register_script(SLIDING_WINDOWS)
        answers = script(keys=[cache.make_key(key) for _, key in counted], args=args)
    # redis-py's errors, django-redis's wrapper of them, or a bare socket error.
    except (RedisError, OSError, ConnectionInterrupted) as exc:
        CACHE.trip(exc)
        raise ThrottleUnavailable() from exc
    waits: list[float] = []
    for (throttle, _), answer in zip(counted, answers, strict=True):
        if answer:
            throttle.now, throttle.oldest = now, float(answer)
            waits.append(throttle.wait())
    return waits


class OneCallThrottles(APIView):
    """For a DRF view: its throttles (`throttle_classes`) in one Redis call, not one each."""

    def check_throttles(self, request: ThrottledRequest) -> None:
        # The throttle_classes of these views are RateThrottles.
        throttles = cast(list[RateThrottle], self.get_throttles())
        if waits := throttles_check(request=request, view=self, throttles=throttles):
            self.throttled(request, max(waits))


def _posted(request: ThrottledRequest, field: str) -> object:
    data = getattr(request, "data", None)
    if data is None:  # a plain Django view (the login pages)
        data = request.POST
    return data.get(field) if hasattr(data, "get") else None


class LoginUsernameThrottle(RateThrottle):
    """Guesses at one account, from any number of addresses, however its name is spelled:
    the key is the account's id when the name (NFKC-normalized, as Django normalizes
    usernames) names one, else the normalized, case-folded name. A username that is not
    text is not counted here: the login refuses it (400) before any password check.
    Showing the form (GET) is free; every other method counts (Django's login view takes
    PUT like POST)."""

    scope = "login_username"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        if request.method in SAFE_METHODS:
            return None
        username = _posted(request, "username")
        if not isinstance(username, str) or not username.strip():
            return None
        name = unicodedata.normalize("NFKC", username).strip()
        # No account has a NUL in its name (PostgreSQL text cannot hold one): not looked up.
        users = get_user_model().objects
        user_id = None if "\x00" in name else users.filter(username=name).values_list("pk", flat=True).first()
        return f"user:{user_id}" if user_id is not None else f"name:{name.casefold()}"


class LoginAddressThrottle(RateThrottle):
    """Guesses from one address, at any number of accounts."""

    scope = "login_address"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        return None if request.method in SAFE_METHODS else self.get_ident(request)


class ProbeAddressThrottle(RateThrottle):
    """The readiness probe per address: each call opens a check of the database, Redis and
    the broker, so nobody may make it a load of their own."""

    scope = "probe_address"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        return self.get_ident(request)


class IngestCourierThrottle(RateThrottle):
    """Ping batches per courier (the route admits only signed-in couriers)."""

    scope = "ingest_courier"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        return f"user:{request.user.pk}" if request.user.is_authenticated else self.get_ident(request)


class TrackingCodeThrottle(RateThrottle):
    """One consumer following one order: the code and the address together."""

    scope = "tracking_link_code"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        code = request.resolver_match.kwargs.get("tracking_code", "") if request.resolver_match else ""
        return f"{code}|{self.get_ident(request)}"


class TrackingAddressThrottle(RateThrottle):
    """Everything one address asks of tracking links (guessing codes included): generous,
    because a carrier NAT puts many consumers behind one address."""

    scope = "tracking_link_address"

    def ident(self, request: ThrottledRequest, view: APIView | None) -> str | None:
        return self.get_ident(request)


def throttled(
    *throttle_classes: type[RateThrottle],
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """The same throttles on a plain Django view (the login pages, the tracking page)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                waits = throttles_check(request=request, view=None, throttles=[cls() for cls in throttle_classes])
            except ThrottleUnavailable as exc:
                return HttpResponse(
                    "Serviço indisponível no momento. Tente de novo em instantes.\n", status=503,
                    headers={"Retry-After": str(exc.retry_after_s)},
                    content_type="text/plain; charset=utf-8",
                )  # fmt: skip
            if waits:
                retry_after = max(1, math.ceil(max(waits)))
                return HttpResponse(
                    "Muitas tentativas. Tente de novo em instantes.\n", status=429,
                    headers={"Retry-After": str(retry_after)}, content_type="text/plain; charset=utf-8",
                )  # fmt: skip
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
