"""DRF throttles counted in the Redis cache, with their rates in `settings.THROTTLE_RATES`
(read at each request, so one setting changes them everywhere). Every one answers 429 with
Retry-After. The client address is the one the trusted proxies saw (`NUM_PROXIES`), never
an X-Forwarded-For entry the client wrote.

A throttle that cannot count fails closed: while its Redis is out the request is refused
with 503 and Retry-After, never let through uncounted (a login could otherwise be guessed
at without limit by whoever can slow Redis down). See docs/SECURITY.md, "Throttles"."""

from __future__ import annotations

import hashlib
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from redis import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from ze_tracking.api import ServiceUnavailable
from ze_tracking.breakers import CACHE


class ThrottleUnavailable(ServiceUnavailable):
    """The throttle's Redis is out: the request is refused, not counted. 503."""

    detail = "This cannot be done right now. Retry later."


class CountingCache:
    """The Redis cache as the throttles use it (DRF reads and writes one key per request):
    failing within REDIS_TIMEOUT_S, then at once while the cache's breaker is open."""

    def get(self, key, default=None):
        return self._call(cache.get, key, default)

    def set(self, key, value, timeout=None):
        return self._call(cache.set, key, value, timeout)

    @staticmethod
    def _call(method, *args):
        if not CACHE.allows():
            raise ThrottleUnavailable()
        try:
            return method(*args)
        # django-redis raises redis-py's errors; a socket error may come bare.
        except (RedisError, OSError) as exc:
            CACHE.trip(exc)
            raise ThrottleUnavailable() from exc


class RateThrottle(SimpleRateThrottle):
    """A throttle whose rate is `settings.THROTTLE_RATES[scope]` and whose key is `ident()`
    (None: the request is not counted by this throttle)."""

    cache = CountingCache()

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
            try:
                waits = [t.wait() for t in (cls() for cls in throttle_classes) if not t.allow_request(request, None)]
            except ThrottleUnavailable as exc:
                return HttpResponse(
                    "Indisponível no momento. Tente de novo em instantes.\n", status=503,
                    headers={"Retry-After": str(exc.retry_after_s)}, content_type="text/plain; charset=utf-8",
                )  # fmt: skip
            if waits:
                retry_after = max(1, int(max(w or 1 for w in waits)))
                return HttpResponse(
                    "Muitas tentativas. Tente de novo em instantes.\n", status=429,
                    headers={"Retry-After": str(retry_after)}, content_type="text/plain; charset=utf-8",
                )  # fmt: skip
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
