"""Redis: the cache (the throttles' counters) and the channel layer (live updates)."""

from __future__ import annotations

from ze_tracking.settings.core import env

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# The cache holds the throttles' counters, read and written on the request path: a Redis
# that does not answer within this is out, and the request a 503 (infra/http/throttles.py).
REDIS_TIMEOUT_S = env.float("REDIS_TIMEOUT_S", default=0.5)
# After Redis or the broker failed, a web process answers 503 without trying for this long
# (infra/http/breakers.py).
BREAKER_OPEN_S = env.float("BREAKER_OPEN_S", default=2.0)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_S, "SOCKET_TIMEOUT": REDIS_TIMEOUT_S},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNELS_PREFIX", default="ze"),
            # Messages waiting per channel; the sockets of one server process share one
            # (channels_redis's process-specific channels), so a publish for many moved orders
            # must fit in it while the process reads them. Unread messages expire in 60 s.
            # https://github.com/django/channels_redis#capacity
            "capacity": env.int("CHANNELS_CAPACITY", default=2000),
        },
    }
}
