"""What the bench watches while load runs, each on its own thread so the load generator's
process is left alone: the broker queue, rows stored, process memory and CPU (once a
second), and the orders' last locations (every 10 ms, for freshness)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil
import psycopg
import redis

from bench.stack import BenchEnv, Stack

PINGS_QUEUE = "pings"
# kombu's Redis transport keeps one list per priority step: "pings", "pings\x06\x163", ...
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class RedisQueue:
    """The pings queue on the run's Redis broker."""

    def __init__(self, env: BenchEnv) -> None:
        self.redis = redis.Redis.from_url(env.redis_url)

    def depth(self) -> int:
        """Task messages waiting (each one a batch)."""
        return sum(self.redis.llen(PINGS_QUEUE + suffix) for suffix in PRIORITY_SUFFIXES)

    def unacked(self) -> int:
        return self.redis.hlen("unacked")

    def purge(self) -> None:
        self.redis.delete(*(PINGS_QUEUE + suffix for suffix in PRIORITY_SUFFIXES))


class SqsQueue:
    """The pings queue on the local SQS server (`make bench ARGS="--broker sqs"`)."""

    def __init__(self, env: BenchEnv) -> None:
        import boto3

        self.url = env.broker["SQS_PINGS_QUEUE_URL"]
        endpoint = "http://" + env.broker["CELERY_BROKER_URL"].rsplit("@", 1)[1]
        self.sqs = boto3.session.Session().client(
            "sqs", region_name="us-east-1", endpoint_url=endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def _count(self, name: str) -> int:
        return int(self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[name])["Attributes"][name])

    def depth(self) -> int:
        return self._count("ApproximateNumberOfMessages")

    def unacked(self) -> int:
        return self._count("ApproximateNumberOfMessagesNotVisible")

    def purge(self) -> None:
        """Receive and delete until nothing is visible: SQS allows one PurgeQueue per queue a
        minute, and the measurements purge more often than that."""
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


def broker_connect(*, env: BenchEnv) -> RedisQueue | SqsQueue:
    return SqsQueue(env) if env.broker else RedisQueue(env)


def queue_depth(*, broker: RedisQueue | SqsQueue) -> int:
    """Task messages waiting in the pings queue (each one a batch)."""
    return broker.depth()


def pings_stored_count(*, conn: psycopg.Connection, courier_ids: list[str], since: float) -> int:
    """Pings of the bench's couriers recorded (device time) from `since` on: each run starts
    its device clock after the previous run's, so this counts one run's rows."""
    row = conn.execute(
        "SELECT count(*) FROM tracking_ping WHERE courier_id = ANY(%s::uuid[]) AND recorded_at >= to_timestamp(%s)",
        [courier_ids, since],
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass
class Sample:
    at: float
    queue: int
    unacked: int
    stored: int
    rss_mb: dict[str, float]
    cpu_cores: dict[str, float]


@dataclass
class Sampler:
    """Once a second: queue depth, stored rows of the current run, RSS and CPU per process."""

    env: BenchEnv
    stack: Stack
    courier_ids: list[str]
    since: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        broker = broker_connect(env=self.env)
        cpu_seen: dict[int, psutil.Process] = {}
        with psycopg.connect(self.env.psycopg_dsn, autocommit=True) as conn:
            while not self._stop.wait(1.0):
                rss, cpu = {}, {}
                for name in self.stack.running():
                    rss[name], cpu[name] = _tree_usage(pids=self.stack.pids(name), seen=cpu_seen)
                self.samples.append(
                    Sample(
                        at=time.time(),
                        queue=queue_depth(broker=broker),
                        unacked=int(broker.unacked()),
                        stored=pings_stored_count(conn=conn, courier_ids=self.courier_ids, since=self.since),
                        rss_mb=rss,
                        cpu_cores=cpu,
                    )
                )


def _tree_usage(*, pids: list[int], seen: dict[int, psutil.Process]) -> tuple[float, float]:
    """RSS (MB) and CPU (cores, since the previous sample) summed over a process tree."""
    rss = cpu = 0.0
    for pid in pids:
        try:
            process = seen.setdefault(pid, psutil.Process(pid))
            rss += process.memory_info().rss / 1e6
            cpu += process.cpu_percent(None) / 100
        except psutil.NoSuchProcess:
            seen.pop(pid, None)
    return rss, cpu


@dataclass
class LastLocationWatch:
    """Polls the orders' last locations (the row GET /orders/{id}/location serves) every
    10 ms and keeps each change: (seen at, order index, device time now shown)."""

    env: BenchEnv
    order_ids: list[str]
    changes: list[tuple[float, int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="last-locations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        index = {order_id: i for i, order_id in enumerate(self.order_ids)}
        shown: dict[int, float] = {}
        with psycopg.connect(self.env.psycopg_dsn, autocommit=True) as conn:
            query = (
                "SELECT order_id::text, extract(epoch FROM recorded_at)::float8 FROM tracking_orderlastlocation "
                "WHERE order_id = ANY(%s::uuid[])"
            )
            while not self._stop.wait(0.01):
                seen_at = time.time()
                for order_id, recorded in conn.execute(query, [self.order_ids]).fetchall():
                    i = index[order_id]
                    if shown.get(i) != recorded:
                        shown[i] = recorded
                        self.changes.append((seen_at, i, recorded))
