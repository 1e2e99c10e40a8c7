"""One settings module, driven by environment variables (12-factor).

Local runs get their variables from `make run` / `make test` (`.local/env`, written by scripts/setup.sh).
Production values come from the Elastic Beanstalk environment that `deploy/` defines.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.observability.logging import logging_config, sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# No production default: a missing key stops start-up with a clear message.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "knox",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "couriers",
    "orders",
    "tracking",
]

MIDDLEWARE = [
    "infra.observability.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "ze_tracking.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "ze_tracking.asgi.application"
WSGI_APPLICATION = "ze_tracking.wsgi.application"


def _database() -> dict:
    """DATABASE_URL wins; otherwise DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD (how
    Elastic Beanstalk receives Aurora's Secrets Manager credentials)."""
    if "DATABASE_URL" in env:
        config = env.db_url("DATABASE_URL")
    elif "DB_HOST" in env:
        config = {
            "HOST": env.str("DB_HOST"),
            "PORT": env.int("DB_PORT", default=5432),
            "NAME": env.str("DB_NAME"),
            "USER": env.str("DB_USER"),
            "PASSWORD": env.str("DB_PASSWORD"),
        }
    else:
        raise ImproperlyConfigured("Set DATABASE_URL (postgis://user:pass@host:port/name) or DB_HOST and friends.")
    # TLS that checks the server: deploy/ sets verify-full and the RDS CA bundle's path.
    # https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
    for option in ("sslmode", "sslrootcert"):
        if value := env.str(f"DATABASE_{option.upper()}", default=""):
            config.setdefault("OPTIONS", {})[option] = value
    # PostGIS's backend with a health check that costs no round trip (infra/db/backend).
    config["ENGINE"] = "infra.db.backend"
    # The web runs under ASGI, where Django advises against persistent connections (each
    # request may run on another thread, and idle connections pile up):
    # https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
    # Celery workers run tasks on long-lived threads and keep theirs for
    # DB_WORKER_CONN_MAX_AGE (ze_tracking/celery.py switches it on when a worker starts);
    # the health check replaces a connection that died between two tasks (a failover).
    config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
    config["CONN_HEALTH_CHECKS"] = True
    # A server that vanished (a failover, a dropped network path) fails a connection within
    # seconds instead of the kernel's two hours: a bounded connect, then TCP keepalives.
    # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-KEEPALIVES
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT_S", default=5))
    options.update({"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3})
    return config


DB_WORKER_CONN_MAX_AGE = env.int("DB_WORKER_CONN_MAX_AGE", default=600)


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# https://docs.djangoproject.com/en/5.2/topics/auth/customizing/#using-a-custom-user-model-when-starting-a-project
AUTH_USER_MODEL = "couriers.User"

TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files from the app itself (no separate web server on EB);
# local runs serve straight from the source folders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/backoffice/"

# 1 MiB request bodies; larger ones get 413 (see infra/http/api.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "couriers.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["infra.http.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "infra.http.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": "infra.http.api.Pagination",
    # The proxies in front of the app that append to X-Forwarded-For; throttles key on the
    # address the outermost trusted one saw. 0 (local): the peer address, and the header a
    # client writes is ignored (None would trust that header: never). deploy/ sets 2, the
    # load balancer and nginx. https://www.django-rest-framework.org/api-guide/throttling/
    "NUM_PROXIES": env.int("DRF_NUM_PROXIES", default=0),
}
# The longest page any list answers (`?limit=` above it is cut to it); 100 by default.
API_PAGE_DEFAULT = env.int("API_PAGE_DEFAULT", default=100)
API_PAGE_MAX = env.int("API_PAGE_MAX", default=500)

# --- API tokens (django-rest-knox): only a SHA-512 digest is stored; each login makes a
# new token for its device; a token expires API_TOKEN_TTL_H after its last use (sliding:
# the courier app stays logged in while it is used), and never lives past
# API_TOKEN_MAX_TTL_DAYS. https://jazzband.github.io/django-rest-knox/settings/
KNOX_TOKEN_MODEL = "couriers.ApiToken"
# knox's migrations would create its own token table beside ours (they ignore the swap).
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",  # the header existing apps send: `Authorization: Token …`
    "TOKEN_TTL": dt.timedelta(hours=env.int("API_TOKEN_TTL_H", default=24)),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": dt.timedelta(days=env.int("API_TOKEN_MAX_TTL_DAYS", default=30)),
    "MIN_REFRESH_INTERVAL": 60,  # at most one write per token a minute
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
}
# Logins beyond this many live tokens per user drop the oldest.
API_TOKENS_PER_USER_MAX = env.int("API_TOKENS_PER_USER_MAX", default=10)

# --- Throttles (DRF's rate syntax, counted in the Redis cache; see infra/http/throttles.py)
THROTTLE_RATES = {
    # Brute force: per account from anywhere, and per address whatever the account.
    "login_username": env.str("THROTTLE_LOGIN_USERNAME", default="10/min"),
    "login_address": env.str("THROTTLE_LOGIN_ADDRESS", default="30/min"),
    # The app sends a batch every few seconds; this only stops a runaway client.
    "ingest_courier": env.str("THROTTLE_INGEST_COURIER", default="300/min"),
    # One phone polls its link every 5 s; a carrier NAT puts many phones behind one address,
    # so the address budget is far more generous than the per-code one.
    "tracking_link_code": env.str("THROTTLE_TRACKING_LINK_CODE", default="60/min"),
    "tracking_link_address": env.str("THROTTLE_TRACKING_LINK_ADDRESS", default="1200/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Zé tracking API",
    "DESCRIPTION": (
        "Courier locations in, order locations and tracking out.\n\n"
        "**Log in** with `POST /api/v1/auth/token` (`username`, `password`, optional `device`); send the token "
        "as `Authorization: Token <token>`. Only its digest is stored. It expires after a day without use (each "
        "use extends it; 30 days at most), and is revoked by `POST /api/v1/auth/logout` (this device), "
        "`/api/v1/auth/logout-all`, a password change, or staff. **Lists** take `limit` (at most 500) and "
        "`offset`. **Throttled** requests (logins, ping batches, tracking links) answer 429 with `Retry-After`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files from the drf-spectacular-sidecar package, served by the app.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The default enum hook, then the error answers every operation can give.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "infra.http.openapi.error_responses_document",
    ],
}

# --- Celery: https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    "tracking.tasks.ping_batch_record": {"queue": "pings"},
    "orders.tasks.*notification*": {"queue": "notifications"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task that fails or hits its hard time limit is never acknowledged as done: a failure is
# rejected without requeue (SQS's redrive policy then moves it to the dead-letter queue), a
# timeout requeued. https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-on-failure-or-timeout
CELERY_TASK_ACKS_ON_FAILURE_OR_TIMEOUT = False
# Every task has a time limit; the default fits the notification and maintenance tasks,
# the ping and partition tasks set their own. Soft raises in the task, hard kills the child.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=50)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60)
# Messages a worker holds per pool process beyond the one it runs: Celery's default. Each
# runs within a second, well inside the visibility timeout.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Retries waiting for their countdown that one worker holds (Redis only: on SQS the queue
# holds them, see infra/queue/settle.py). Past it the worker stops fetching until some run.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-eta-task-limit
CELERY_WORKER_ETA_TASK_LIMIT = env.int("CELERY_WORKER_ETA_TASK_LIMIT", default=1000)
# Messages that cannot be read are dead-lettered, not dropped (infra/queue/celery_private.py).
CELERY_WORKER_CONSUMER = "infra.queue.celery_private:Consumer"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connections before and after every task (a
# reconnect per batch) unless this is set, and then every 2 x N tasks. The worker keeps its
# connection instead and drops it when broken or older than CONN_MAX_AGE, as Django does
# between requests (ze_tracking/celery.py).
CELERY_DB_REUSE_MAX = 1_000_000
# Publishing answers within about 2 s when the broker is down, silent or refusing (the
# ingest API then answers 503 with Retry-After): each attempt is bounded by
# BROKER_TIMEOUT_S to connect and to read the reply, and there is one retry, which is what
# a pooled connection that died with a restarted broker needs.
# https://docs.celeryq.dev/en/stable/userguide/calling.html#retry-policy
BROKER_TIMEOUT_S = env.float("BROKER_TIMEOUT_S", default=0.5)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0, "interval_max": 0.1}
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    # A message not acked within this window is delivered again (worker died mid-batch).
    # On SQS the queue's own attribute rules (deploy/ze_infra/messaging.py, 300 s, passed to
    # the app in this variable); on Redis kombu applies this value.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
}

# --- Retries of the ping task (infra/queue/settle.py, docs/RELIABILITY.md).
# A batch of <= 500 pings takes well under a second; the limits leave room for a slow
# database and for the split-and-retry of a batch holding a refused ping.
PING_TASK_SOFT_TIME_LIMIT_S = env.int("PING_TASK_SOFT_TIME_LIMIT_S", default=50)
PING_TASK_TIME_LIMIT_S = env.int("PING_TASK_TIME_LIMIT_S", default=60)
# A message whose worker died with it this many times (it kills its process, or outlives the
# hard time limit) is dead-lettered instead of run again (infra/queue/settle.py). Below
# the SQS queues' maxReceiveCount (5, deploy/ze_infra/messaging.py), so the table gets it.
TASK_MAX_DELIVERIES = env.int("TASK_MAX_DELIVERIES", default=3)
# Transient failures: 1, 2, 4 ... s with full jitter, capped at 60 s, retried until the batch
# is as old as SQS keeps a message (4 days, deploy/ze_infra/messaging.py): each retry is a new
# message, so without this bound a batch could be retried forever.
TASK_RETRY_BACKOFF_S = env.int("TASK_RETRY_BACKOFF_S", default=1)
TASK_RETRY_BACKOFF_MAX_S = env.int("TASK_RETRY_BACKOFF_MAX_S", default=60)
TASK_RETRY_MAX_AGE_S = env.int("TASK_RETRY_MAX_AGE_S", default=4 * 24 * 3600)
if CELERY_BROKER_URL.startswith("sqs://"):
    # predefined_queues: the app needs no CreateQueue/ListQueues permission.
    # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/sqs.html
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "region": env.str("AWS_REGION", default="us-east-1"),
            "wait_time_seconds": 20,
            "is_secure": env.bool("SQS_IS_SECURE", default=True),
            # The envelope kombu writes is ASCII JSON already (the task body inside it is
            # base64): encoding the whole of it in base64 again would make a message 4/3
            # larger and let a batch under MAX_TASK_PAYLOAD_BYTES pass SQS's 256 KiB. A
            # worker reads both forms. https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.SQS.html
            "sqs_base64_encoding": False,
            "predefined_queues": {
                name: {"url": env.str(f"SQS_{name.upper()}_QUEUE_URL")}
                for name in ("pings", "notifications", "maintenance")
            },
            # boto3's client for publish, ack and visibility changes: botocore's defaults
            # (60 s timeouts, retries with backoff) would hold a request for minutes. The
            # worker's long polls go through kombu's own HTTP client, which this leaves
            # alone. https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
            "client-config": {
                "connect_timeout": BROKER_TIMEOUT_S,
                "read_timeout": BROKER_TIMEOUT_S,
                "retries": {"total_max_attempts": 1},
            },
        }
    )
else:
    # A publish waits at most this long for Redis; the worker's BRPOP is read by the event
    # loop and is not bound by it. https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
    CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = BROKER_TIMEOUT_S
    CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] = BROKER_TIMEOUT_S
    # kombu's Redis transport, with a fix that keeps a worker alive when Redis restarts.
    CELERY_BROKER_TRANSPORT = "infra.queue.kombu_private:Transport"

# Exactly one beat: celery-redbeat keeps the schedule in Redis and holds a lock there; a
# second beat (a deploy or platform update starts the new one before stopping the old)
# waits for the lock instead of scheduling everything twice.
# https://redbeat.readthedocs.io/en/latest/config.html
# infra/queue/redbeat_private.py's scheduler is redbeat's, surviving a Redis that restarts or hangs.
CELERY_BEAT_SCHEDULER = "infra.queue.redbeat_private.Scheduler"
CELERY_REDBEAT_REDIS_URL = REDIS_URL
# Beat's Redis calls give up on a silent Redis after 2 s and are retried once (redis-py's
# default, 10 retries with backoff, would hold a tick for half a minute); a tick that fails
# is tried again at the next one.
CELERY_REDBEAT_REDIS_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2, "retry": Retry(NoBackoff(), 1)}
CELERY_REDBEAT_KEY_PREFIX = env.str("REDBEAT_KEY_PREFIX", default="redbeat")
# The lock expires this long after its holder stops renewing it (a killed beat), so a
# standby beat takes over within it; beat renews it on every tick (max_interval below).
CELERY_REDBEAT_LOCK_TIMEOUT = env.int("REDBEAT_LOCK_TIMEOUT", default=60)
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_BEAT_SCHEDULE = {
    # Proof of life for the beat-heartbeat-missing alarm (deploy/ze_infra/monitoring.py).
    # Expires so a backlog cannot replay old beats as if beat were alive now.
    "beat-heartbeat": {
        "task": "ze_tracking.celery.beat_heartbeat",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "ping-partitions-ensure": {
        "task": "tracking.tasks.ping_partitions_ensure",
        "schedule": 3600.0,
    },
    "ping-partitions-pack": {
        "task": "tracking.tasks.ping_partitions_pack",
        "schedule": 6 * 3600.0,
    },
    "ping-partitions-drop-expired": {
        "task": "tracking.tasks.ping_partitions_drop_expired",
        "schedule": 6 * 3600.0,
    },
    # Keeps the event identities to the acceptance window (tracking.models.PingEvent).
    "ping-events-prune": {
        "task": "tracking.tasks.ping_events_prune",
        "schedule": 3600.0,
    },
    # Requests refuse expired tokens without looking at the user's others; logins and this
    # delete them (couriers.authentication).
    "api-tokens-expired-delete": {
        "task": "couriers.tasks.api_tokens_expired_delete",
        "schedule": 3600.0,
    },
    # Covers a broker that lost (or never got) the message published after commit.
    "notifications-pending-resend": {
        "task": "orders.tasks.notifications_pending_resend",
        "schedule": 60.0,
    },
}

# --- Tracking rules (see tracking/services/*)
TRACKING = {
    "MAX_BATCH_PINGS": env.int("TRACKING_MAX_BATCH_PINGS", default=500),
    "MAX_FUTURE_S": env.int("TRACKING_MAX_FUTURE_S", default=300),
    "MAX_AGE_S": env.int("TRACKING_MAX_AGE_S", default=7 * 24 * 3600),
    "MAX_SPEED_MPS": env.float("TRACKING_MAX_SPEED_MPS", default=60.0),
    "DEFAULT_SPEED_MPS": env.float("TRACKING_DEFAULT_SPEED_MPS", default=6.0),
    # A task message must stay inside SQS's 256 KiB (the queues' MaximumMessageSize,
    # deploy/ze_infra/messaging.py): the task body goes in base64 (4/3 of this) inside an
    # envelope of about 1.5 KB. tests/e2e/test_sqs_broker.py publishes a batch of this size.
    "MAX_TASK_PAYLOAD_BYTES": env.int("TRACKING_MAX_TASK_PAYLOAD_BYTES", default=188 * 1024),
    "MAX_ATTRIBUTES_BYTES": env.int("TRACKING_MAX_ATTRIBUTES_BYTES", default=2048),
    "MAX_ATTRIBUTES_DEPTH": env.int("TRACKING_MAX_ATTRIBUTES_DEPTH", default=8),
    "PARTITION_DAYS_AHEAD": env.int("TRACKING_PARTITION_DAYS_AHEAD", default=7),
    # Partition DDL waits this long for a lock, then gives way to ingest and tries again.
    "PARTITION_LOCK_TIMEOUT_MS": env.int("TRACKING_PARTITION_LOCK_TIMEOUT_MS", default=2000),
    "PARTITION_DDL_ATTEMPTS": env.int("TRACKING_PARTITION_DDL_ATTEMPTS", default=5),
    # Raw pings stay this long in PostgreSQL; the analytics copy keeps everything.
    "RETENTION_DAYS": env.int("TRACKING_RETENTION_DAYS", default=90),
    # The backoffice map greys out couriers without a ping for this long.
    "STALE_AFTER_S": env.int("TRACKING_STALE_AFTER_S", default=120),
    # The position filter (tracking/services/plausibility.py): fixes further apart than the
    # gap do not contradict each other, but agree across it at up to the gap speed (a
    # sustained average over ten minutes or more, generous for a city courier); a run of
    # this many agreeing fixes replaces a contradicting reference; accuracy counts up to the
    # cap; stored fixes read per side of a batch stretch, reaching back and ahead at most
    # the history; a fix reported this accurate (a GPS fix; network positions are tens to
    # thousands of metres) may send "arriving" with no other fix agreeing with it.
    "PLAUSIBILITY_GAP_S": env.int("TRACKING_PLAUSIBILITY_GAP_S", default=600),
    "PLAUSIBILITY_GAP_SPEED_MPS": env.float("TRACKING_PLAUSIBILITY_GAP_SPEED_MPS", default=30.0),
    "PLAUSIBILITY_RUN": env.int("TRACKING_PLAUSIBILITY_RUN", default=3),
    "PLAUSIBILITY_MAX_SKIP": env.int("TRACKING_PLAUSIBILITY_MAX_SKIP", default=8),
    "PLAUSIBILITY_MAX_ACCURACY_M": env.float("TRACKING_PLAUSIBILITY_MAX_ACCURACY_M", default=100.0),
    "PLAUSIBILITY_CONTEXT_PINGS": env.int("TRACKING_PLAUSIBILITY_CONTEXT_PINGS", default=32),
    "PLAUSIBILITY_HISTORY_S": env.int("TRACKING_PLAUSIBILITY_HISTORY_S", default=6 * 3600),
    "PLAUSIBILITY_GOOD_ACCURACY_M": env.float("TRACKING_PLAUSIBILITY_GOOD_ACCURACY_M", default=20.0),
}
# How long an event's identity is kept (tracking.models.PingEvent): a copy is accepted up to
# MAX_AGE_S late or MAX_FUTURE_S early, then may wait in the queue, retried, for
# TASK_RETRY_MAX_AGE_S. Past that, only a copy with another device time could still reach a
# worker (docs/ARCHITECTURE.md, "One event, one ping").
TRACKING["EVENT_IDENTITY_KEEP_S"] = env.int(
    "TRACKING_EVENT_IDENTITY_KEEP_S",
    default=TRACKING["MAX_AGE_S"] + TRACKING["MAX_FUTURE_S"] + TASK_RETRY_MAX_AGE_S,
)
MAP_TILE_URL = env.str("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")

# --- Consumer notifications (see orders/notifications.py) and the tracking link
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# Only set locally and in tests (moto's server); production talks to the real SNS.
AWS_ENDPOINT_URL_SNS = env.str("AWS_ENDPOINT_URL_SNS", default="") or None
NOTIFICATIONS_BACKEND = env.str("NOTIFICATIONS_BACKEND", default="log")
if NOTIFICATIONS_BACKEND not in ("log", "sns", "webhook"):
    raise ImproperlyConfigured(f"NOTIFICATIONS_BACKEND must be log, sns or webhook, not {NOTIFICATIONS_BACKEND!r}.")
NOTIFICATIONS_SNS_TOPIC_ARN = env.str("NOTIFICATIONS_SNS_TOPIC_ARN", default="")
NOTIFICATIONS_WEBHOOK_URL = env.str("NOTIFICATIONS_WEBHOOK_URL", default="")
NOTIFICATIONS_WEBHOOK_SECRET = env.str("NOTIFICATIONS_WEBHOOK_SECRET", default="")
if NOTIFICATIONS_BACKEND == "sns" and not NOTIFICATIONS_SNS_TOPIC_ARN:
    raise ImproperlyConfigured("NOTIFICATIONS_BACKEND=sns needs NOTIFICATIONS_SNS_TOPIC_ARN.")
if NOTIFICATIONS_BACKEND == "webhook" and not (NOTIFICATIONS_WEBHOOK_URL and NOTIFICATIONS_WEBHOOK_SECRET):
    raise ImproperlyConfigured("NOTIFICATIONS_BACKEND=webhook needs NOTIFICATIONS_WEBHOOK_URL and _SECRET.")
# Delivery retries: Celery's exponential backoff (base, 2x base, 4x base ... capped), then
# the row is marked failed. https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.retry_backoff
# 5, 10, 20, 40, then 60 s (the cap: see the visibility check below) 12 times: about 13 min.
NOTIFICATIONS_MAX_RETRIES = env.int("NOTIFICATIONS_MAX_RETRIES", default=16)
NOTIFICATIONS_RETRY_BACKOFF_S = env.int("NOTIFICATIONS_RETRY_BACKOFF_S", default=5)
NOTIFICATIONS_RETRY_BACKOFF_MAX_S = env.int("NOTIFICATIONS_RETRY_BACKOFF_MAX_S", default=60)
# A row left pending (or claimed by a worker that died) this long is enqueued again by beat.
NOTIFICATIONS_STALE_AFTER_S = env.int("NOTIFICATIONS_STALE_AFTER_S", default=600)
# A worker holds a received message unacknowledged until it ran, for up to the hard time
# limit, and a notification's retry also for its countdown (a ping batch's retry waits in
# the SQS queue instead: DelaySeconds). If that took longer than the visibility timeout, the
# broker would hand the message to a second worker meanwhile and the task would run twice;
# half of it is left for the message to wait behind the worker's prefetched ones. Checked on
# SQS, where deploy/ passes the queues' own visibility timeout; the Redis defaults agree too
# (tests shrink them on purpose). Maintenance tasks are acknowledged on receipt (tracking/tasks.py).
for _held in (
    "PING_TASK_TIME_LIMIT_S",
    "NOTIFICATIONS_RETRY_BACKOFF_MAX_S + CELERY_TASK_TIME_LIMIT",
):
    _held_s = sum(globals()[name] for name in _held.split(" + "))
    if CELERY_BROKER_URL.startswith("sqs://") and _held_s > CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] / 2:
        raise ImproperlyConfigured(
            f"{_held} must stay under half of CELERY_VISIBILITY_TIMEOUT, or a retried task can run twice."
        )
ARRIVING_RADIUS_M = env.float("ARRIVING_RADIUS_M", default=300.0)
ARRIVING_ETA_S = env.int("ARRIVING_ETA_S", default=120)
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# After delivery or cancellation, the tracking link shows the status only once this passed.
TRACKING_LINK_TTL_AFTER_END_S = env.int("TRACKING_LINK_TTL_AFTER_END_S", default=6 * 3600)
# The fleet socket re-reads its user's session and staff rights at most this often, before
# forwarding an update: a logout or a lost staff right closes it within this time.
FLEET_SOCKET_RECHECK_S = env.float("FLEET_SOCKET_RECHECK_S", default=5.0)
# Live updates (the fleet map, the tracking page's socket) leave a worker or web process at
# most this often, each with the newest state of whatever moved meanwhile
# (tracking/broadcasts.py): the map's markers glide for longer than this anyway.
LIVE_UPDATE_INTERVAL_S = env.float("LIVE_UPDATE_INTERVAL_S", default=0.2)
TRACKING_PAGE_POLL_S = env.float("TRACKING_PAGE_POLL_S", default=5.0)
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="&copy; OpenStreetMap")

# --- Production hardening; `manage.py check --deploy` passes with DEBUG off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from this site, no inline
# code; map tiles from the tile server; sockets to this site.
# https://django-csp.readthedocs.io/en/latest/configuration.html
_tiles = urlsplit(MAP_TILE_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *([f"{_tiles.scheme}://{_tiles.netloc}"] if _tiles.netloc else [])],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# On Elastic Beanstalk the GeoDjango libraries live outside the loader's path (deploy/eb).
GDAL_LIBRARY_PATH = env.str("GDAL_LIBRARY_PATH", default=None)
GEOS_LIBRARY_PATH = env.str("GEOS_LIBRARY_PATH", default=None)

SILENCED_SYSTEM_CHECKS = ["gis.W001"]  # GDAL 3.6 from Debian 12 works for what we use.

# --- Observability (infra/observability/logging.py, infra/observability/metrics.py)
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))
# Workers log through the same JSON handler instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Bearer token a Prometheus scraper may use for /metrics; staff users need none.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
sentry_init(
    dsn=env.str("SENTRY_DSN", default=""),
    environment=env.str("SENTRY_ENVIRONMENT", default=env.str("METRICS_STAGE", default="local")),
    traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
)
