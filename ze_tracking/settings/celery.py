"""Celery: the broker (SQS in production, Redis locally), task limits and retries, beat."""

from __future__ import annotations

from redis.backoff import NoBackoff
from redis.retry import Retry

from ze_tracking.settings.cache import REDIS_URL
from ze_tracking.settings.core import TIME_ZONE, env

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
