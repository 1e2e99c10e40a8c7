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
# channels_redis's pub/sub layer: a group message is one PUBLISH, which each server process
# with members receives once and hands to its sockets; a message for a process that is not
# listening (a socket reconnecting) is not kept, and a socket gets the current state when it
# (re)connects. Chosen over the core layer (a sorted set per channel, a Redis write per
# socket) by `make bench ONLY=live`: with 2,000 tracking sockets in one process the core
# layer delivered nothing after a reconnect storm, the pub/sub layer reopened them all
# (docs/PERFORMANCE.md, live section).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNELS_PREFIX", default="ze")},
    }
}
