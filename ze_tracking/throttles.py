"""DRF throttles counted in Redis, with their rates in `settings.THROTTLE_RATES` (read at
each request, so one setting changes them everywhere). Every one answers 429 with
Retry-After. The client address is the one the trusted proxies saw (`NUM_PROXIES`), never
an X-Forwarded-For entry the client wrote."""

from __future__ import annotations

import hashlib
import os
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

# DRF's sliding window (at most N requests in any `duration`), checked and recorded in one
# step inside Redis: the requests of the window are a sorted set scored by time. DRF reads
# the list of times, then writes it back: two round trips, and concurrent requests all read
# the same count and all pass (80 of 80 parallel requests against a limit of 20, measured).
# Returns {1} when the request counts, or {0, when the oldest request that must leave the
# window for one more to fit was made}; a refused request is not recorded (as in DRF).
SLIDING_WINDOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  return {1}
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, oldest[2] or ARGV[1]}
"""


class RateThrottle(SimpleRateThrottle):
    """A throttle whose rate is `settings.THROTTLE_RATES[scope]` and whose key is `ident()`
    (None: the request is not counted by this throttle), counted by `SLIDING_WINDOW`."""

    def get_rate(self) -> str:
        return settings.THROTTLE_RATES[self.scope]

    def ident(self, request, view) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request, view) -> str | None:
        ident = self.ident(request, view)
        if ident is None:
            return None
        # Hashed: keys stay short and carry no user input into Redis.
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(ident.encode()).hexdigest()[:32]}

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        # The cache's own key (prefix and version), as the cache API would write it.
        # redis-py sends the script's digest (EVALSHA), and the script when Redis lost it.
        script = cache.client.get_client(write=True).register_script(SLIDING_WINDOW)
        answer = script(
            keys=[cache.make_key(key)],
            args=[repr(self.now), self.duration, self.num_requests, f"{self.now!r}:{os.urandom(6).hex()}"],
        )
        if answer[0] == 1:
            return True
        self.oldest = float(answer[1])
        return False

    def wait(self) -> float:
        """Seconds until the window has room again."""
        return max(self.duration - (self.now - self.oldest), 0.0)


def _posted(request, field: str) -> str:
    data = getattr(request, "data", None)
    if data is None:  # a plain Django view (the login pages)
        data = request.POST
    value = data.get(field) if hasattr(data, "get") else None
    return value.strip().lower() if isinstance(value, str) else ""


class LoginUsernameThrottle(RateThrottle):
    """Guesses at one account, from any number of addresses. Showing the form (GET) is
    free; every other method counts (Django's login view takes PUT like POST)."""

    scope = "login_username"

    def ident(self, request, view):
        return None if request.method in SAFE_METHODS else (_posted(request, "username") or None)


class LoginAddressThrottle(RateThrottle):
    """Guesses from one address, at any number of accounts."""

    scope = "login_address"

    def ident(self, request, view):
        return None if request.method in SAFE_METHODS else self.get_ident(request)


class IngestCourierThrottle(RateThrottle):
    """Ping batches per courier (the route admits only signed-in couriers)."""

    scope = "ingest_courier"

    def ident(self, request, view):
        return f"user:{request.user.pk}" if request.user.is_authenticated else self.get_ident(request)


class TrackingCodeThrottle(RateThrottle):
    """One consumer following one order: the code and the address together."""

    scope = "tracking_link_code"

    def ident(self, request, view):
        code = request.resolver_match.kwargs.get("tracking_code", "") if request.resolver_match else ""
        return f"{code}|{self.get_ident(request)}"


class TrackingAddressThrottle(RateThrottle):
    """Everything one address asks of tracking links (guessing codes included): generous,
    because a carrier NAT puts many consumers behind one address."""

    scope = "tracking_link_address"

    def ident(self, request, view):
        return self.get_ident(request)


def throttled(*throttle_classes):
    """The same throttles on a plain Django view (the login pages, the tracking page)."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            waits = [t.wait() for t in (cls() for cls in throttle_classes) if not t.allow_request(request, None)]
            if waits:
                retry_after = max(1, int(max(w or 1 for w in waits)))
                return HttpResponse(
                    "Muitas tentativas. Tente de novo em instantes.\n", status=429,
                    headers={"Retry-After": str(retry_after)}, content_type="text/plain; charset=utf-8",
                )  # fmt: skip
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
