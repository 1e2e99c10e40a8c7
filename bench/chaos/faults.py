"""The faults, each injected `FAULT_AT_S` into its scenario's load and then repaired, and
the poison scenario's database side."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from bench.chaos import checks
from bench.chaos.scenarios import ROOT, Chaos, Fault, Load, Outcome
from bench.fixtures import Fleet

FAULT_AT_S = 8.0
POSTGRES_DOWN_S = 20.0
REDIS_DOWN_S = 3.0
BROKER_FROZEN_S = 12.0
# The broker drop: how long moto stays frozen, or the lock held after Redis dropped.
BROKER_DROP_S = 5.0
# Under the soft time limit (12 s in the chaos stack), so no batch behind it fails.
DEEP_QUEUE_S = 9.0
# Couriers whose rows stay locked past the soft time limit, and by how much.
SLOW_COURIERS = 5
SOFT_LIMIT_OVER_S = 6.0
READ_ONLY_S = 20.0
# How long the pack task is kept waiting past the visibility timeout, and the longest pause
# of ingest allowed meanwhile (a batch is a few hundred milliseconds' worth of pings).
MAINTENANCE_OVER_S = 8.0
INGEST_STALL_S = 5.0


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def worker_kill(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """SIGKILL the worker and its pool while a batch is being written, then start a new one.
    "Mid-batch" is seen in PostgreSQL: a transaction of the chaos database that has written
    (holds a transaction id); the web only reads, so it is the worker's."""
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    mid_batch = False
    deadline = time.time() + 15
    with psycopg.connect(chaos.env.psycopg_dsn, autocommit=True) as conn:
        while time.time() < deadline and not mid_batch:
            mid_batch = conn.execute(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            ).fetchone()[0]
    process = chaos.stack.processes.pop("worker")
    os.killpg(process.pid, signal.SIGKILL)
    fault.began = time.time()
    process.wait(timeout=10)
    fault.notes.append("killed while a batch was being written" if mid_batch else "no batch seen in flight; killed")
    chaos.stack.start("worker")
    fault.repaired = time.time()
    return fault


def postgres_stop(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """`pg_ctl stop -m fast` (every session ends), POSTGRES_DOWN_S, then start again."""
    why = chaos.postgres.discover()
    if why:
        return Fault(failures=[f"PostgreSQL cannot be stopped here: {why}"])
    return _outage(started=load.started, begin=chaos.postgres.stop, end=chaos.postgres.start, seconds=POSTGRES_DOWN_S)


def redis_restart(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """Redis (cache, channel layer, and the broker unless it is SQS) crashes and comes back
    REDIS_DOWN_S later from its append-only file."""
    return _outage(started=load.started, begin=chaos.redis.kill, end=chaos.redis.start, seconds=REDIS_DOWN_S)


def broker_frozen(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """The broker (Redis, or moto's SQS) stops answering for BROKER_FROZEN_S (connections
    hang instead of being refused). The API must say 503 with Retry-After quickly; slow
    answers are failures here."""
    broker = _broker(chaos)
    return _outage(started=load.started, begin=broker.freeze, end=broker.thaw, seconds=BROKER_FROZEN_S)


def _broker(chaos: Chaos):
    return chaos.sqs if chaos.transport == "sqs" else chaos.redis


def _outage(*, started: float, begin, end, seconds: float) -> Fault:
    """At FAULT_AT_S into the load, break something for `seconds`, then repair it."""
    _sleep_until(started + FAULT_AT_S)
    fault = Fault()
    begin()
    fault.began = time.time()
    time.sleep(seconds)
    end()
    fault.repaired = time.time()
    return fault


def broker_drop(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """The worker's broker connections drop while batches wait behind a busy pool process.
    Steps: lock one courier's last-location row, so that a pool process blocks inside its
    batch's transaction; drop the broker (Redis: close the worker's connections; SQS: moto
    unreachable for BROKER_DROP_S, frozen, since it keeps its queues in memory); release the
    lock. The blocked batch then commits and is acknowledged over a connection that is gone."""
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    with rows_locked(dsn=chaos.env.psycopg_dsn, courier_ids=fleet.courier_ids[:1]) as lock:
        blocked = lock.blocked_wait(count=1, timeout_s=10)
        fault.notes.append(f"{len(blocked)} batch blocked behind the lock when the broker dropped")
        fault.began = time.time()
        if chaos.transport == "sqs":
            chaos.sqs.freeze()
            try:
                time.sleep(BROKER_DROP_S)
            finally:
                chaos.sqs.thaw()
            fault.notes.append(f"moto's SQS frozen {BROKER_DROP_S:.0f} s")
        else:
            killed = chaos.redis.clients_kill(pids=chaos.stack.pids("worker"))
            fault.notes.append(f"{killed} Redis connections of the worker closed")
            if not killed:
                fault.failures.append("the worker held no Redis connection to close")
            time.sleep(BROKER_DROP_S)
    fault.repaired = time.time()
    return fault


def undecodable(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """A ping batch message whose body is not JSON, published (through kombu, with the app's
    broker settings) while the queue is deep: every courier's last-location row is locked
    for DEEP_QUEUE_S (under the soft time limit), so both pool processes block and batches
    pile up. The message must end in the batch dead-letter table, under its task id."""
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    task_id = str(uuid.uuid4())
    with rows_locked(dsn=chaos.env.psycopg_dsn, courier_ids=fleet.courier_ids) as lock:
        fault.began = lock.began
        lock.blocked_wait(count=2, timeout_s=5)
        time.sleep(max(0.0, lock.began + DEEP_QUEUE_S / 3 - time.time()))
        depth = queue_depth(chaos=chaos)
        publish(chaos=chaos, args=["undecodable", task_id])
        fault.notes.append(f"undecodable message {task_id} published behind {depth} queued messages")
        time.sleep(max(0.0, lock.began + DEEP_QUEUE_S - time.time()))
    fault.repaired = time.time()

    def verify() -> tuple[list[str], list[str]]:
        row = _batch_dead_letter_wait(dsn=chaos.env.psycopg_dsn, task_id=task_id, timeout_s=30)
        if row is None:
            return [f"the undecodable message {task_id} is not in tracking_pingbatchdeadletter"], []
        return [], [f"dead-lettered as {row[0]}: {row[1][:120]}"]

    fault.verify = verify
    return fault


def _batch_dead_letter_wait(*, dsn: str, task_id: str, timeout_s: float) -> tuple[str, str] | None:
    deadline = time.time() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT error_class, error_message FROM tracking_pingbatchdeadletter WHERE task_id = %s", [task_id]
            ).fetchone()
            if row is not None or time.time() > deadline:
                return row
            time.sleep(0.5)


def soft_time_limit(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """Some couriers' last-location rows stay locked longer than the ping task's soft time
    limit (a long transaction elsewhere), then are released: the batches that waited for
    them reach the limit, are retried, and are stored."""
    limit_s = float(chaos.stack.env.variables()["PING_TASK_SOFT_TIME_LIMIT_S"])
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    log = LogMark.at(chaos=chaos, name="worker")
    with rows_locked(dsn=chaos.env.psycopg_dsn, courier_ids=fleet.courier_ids[:SLOW_COURIERS]) as lock:
        fault.began = lock.began
        lock.blocked_wait(count=1, timeout_s=10)
        time.sleep(max(0.0, lock.began + limit_s + SOFT_LIMIT_OVER_S - time.time()))
    fault.repaired = time.time()

    def verify() -> tuple[list[str], list[str]]:
        reached = log.count("SoftTimeLimitExceeded")
        if not reached:
            return [f"no batch reached the soft time limit ({limit_s:.0f} s) while the rows were locked"], []
        return [], [f"{reached} worker log lines name SoftTimeLimitExceeded"]

    fault.verify = verify
    return fault


def child_kill(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """SIGKILL one pool process (not the worker) while it holds a batch: one courier's
    last-location row is locked, so the process that takes its batch waits inside a
    transaction that has written (holds a transaction id); that process is found by its
    database connection's port and killed, then the lock released. The worker replaces the
    process and the batch is delivered again."""
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    worker = chaos.stack.processes["worker"].pid
    with rows_locked(dsn=chaos.env.psycopg_dsn, courier_ids=fleet.courier_ids[:1]) as lock:
        writers = [b for b in lock.blocked_wait(count=1, timeout_s=15) if b.wrote]
        if not writers:
            fault.failures.append("no pool process was seen inside a batch's transaction")
            return fault
        child = _process_of_port(pids=chaos.stack.pids("worker"), port=writers[0].client_port)
        if child is None or child == worker:
            fault.failures.append(f"no pool process holds the connection on port {writers[0].client_port}")
            return fault
        before = set(chaos.stack.pids("worker"))
        os.kill(child, signal.SIGKILL)
        fault.began = time.time()
    fault.repaired = time.time()
    fault.notes.append("killed a pool process inside a batch's transaction")
    deadline = time.time() + 10
    while time.time() < deadline and not set(chaos.stack.pids("worker")) - before:
        time.sleep(0.1)
    replaced = set(chaos.stack.pids("worker")) - before
    if not replaced:
        fault.failures.append("the worker did not start a new pool process within 10 s")
    return fault


def _process_of_port(*, pids: list[int], port: int) -> int | None:
    """The process whose TCP connection leaves from this local port."""
    for pid in pids:
        try:
            if any(c.laddr.port == port for c in psutil.Process(pid).net_connections("tcp")):
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


def database_read_only(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """The database turns read-only for READ_ONLY_S, as a writer demoted by a failover:
    `default_transaction_read_only` set cluster-wide and reloaded, so live connections answer
    25006 to a write. Then writable again."""
    why = chaos.postgres.discover()
    if why:
        return Fault(failures=[f"the database's settings cannot be changed here: {why}"])
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    log = LogMark.at(chaos=chaos, name="worker")
    database_read_only_set(dsn=chaos.env.psycopg_dsn, on=True)
    fault.began = time.time()
    try:
        time.sleep(READ_ONLY_S)
    finally:
        database_read_only_set(dsn=chaos.env.psycopg_dsn, on=False)
    fault.repaired = time.time()

    def verify() -> tuple[list[str], list[str]]:
        refused = log.count("read-only transaction")
        if not refused:
            return ["no batch met the read-only database"], []
        return [], [f"{refused} worker log lines name a read-only transaction (25006)"]

    fault.verify = verify
    return fault


def database_read_only_set(*, dsn: str, on: bool) -> None:
    """ALTER SYSTEM writes postgresql.auto.conf in the cluster's folder; RESET removes the line."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        # This session writes even while the cluster is read-only.
        conn.execute("SET default_transaction_read_only = off")
        if on:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        conn.execute("SELECT pg_reload_conf()")


def maintenance_long(chaos: Chaos, fleet: Fleet, load: Load) -> Fault:
    """A maintenance task that outlives the visibility timeout. Steps: the worker must have a
    second pool process (or maintenance would stop ingest); a closed day's key is marked
    not packed; a session holds an old snapshot (a repeatable-read transaction that read
    tracking_ping), which REINDEX CONCURRENTLY waits for; `ping_partitions_pack` is published
    and kept waiting MAINTENANCE_OVER_S past the visibility timeout while ingest must go on;
    the snapshot is released. The task must have been received and run once: acknowledged
    on receipt, it is not delivered again when the visibility timeout passes."""
    visibility_s = float(chaos.stack.env.variables()["CELERY_VISIBILITY_TIMEOUT"])
    processes = worker_concurrency(chaos=chaos)
    if processes < 2:
        return Fault(failures=[f"the worker runs {processes} process: a long maintenance task would stop ingest"])
    dsn = chaos.env.psycopg_dsn
    key = _closed_day_key_unmark(dsn=dsn)
    _sleep_until(load.started + FAULT_AT_S)
    fault = Fault()
    task_id = str(uuid.uuid4())
    log = LogMark.at(chaos=chaos, name="worker")
    with psycopg.connect(dsn) as snapshot:
        snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT count(*) FROM tracking_ping WHERE courier_id = %s", [fleet.courier_ids[0]])
        publish(chaos=chaos, args=["task", PACK_TASK, task_id])
        published = time.time()
        fault.began = published
        waiting = _wait_for(lambda: _reindex_waiting(dsn=dsn), timeout_s=15)
        if not waiting:
            fault.failures.append(f"the pack task never began rebuilding {key} (no REINDEX waiting)")
        samples = []
        while time.time() < published + visibility_s + MAINTENANCE_OVER_S:
            samples.append((time.time(), checks.stored_count(dsn=dsn, courier_ids=fleet.courier_ids)))
            time.sleep(1.0)
        snapshot.rollback()
    fault.repaired = time.time()
    stall_s = _longest_stall(samples=samples)
    (first_at, first), (last_at, last) = samples[0], samples[-1]
    fault.notes.append(
        f"{processes} pool processes; pings stored at {(last - first) / max(1.0, last_at - first_at):,.0f}/s while "
        f"the pack task waited {fault.repaired - published:.0f} s (visibility timeout {visibility_s:.0f} s); "
        f"longest pause {stall_s:.0f} s"
    )
    if stall_s > INGEST_STALL_S:
        fault.failures.append(f"ingest stopped for {stall_s:.0f} s while the pack task waited")

    def verify() -> tuple[list[str], list[str]]:
        finished = _wait_for(lambda: log.count(f"{task_id}] succeeded"), timeout_s=60)
        received = log.count(f"{task_id}] received")
        failures = []
        if received != 1:
            failures.append(f"the pack task {task_id} was received {received} times (delivered again)")
        if finished != 1:
            failures.append(f"the pack task {task_id} succeeded {finished} times (expected once)")
        return failures, [f"pack task received {received} time(s), succeeded {finished} time(s)"]

    fault.verify = verify
    return fault


PACK_TASK = "tracking.tasks.ping_partitions_pack"


def _longest_stall(*, samples: list[tuple[float, int]]) -> float:
    """The longest time the stored count stayed the same (or the database did not answer)."""
    longest, since = 0.0, samples[0]
    for at, count in samples[1:]:
        if count > since[1]:
            since = (at, count)
        longest = max(longest, at - since[0])
    return longest


def worker_concurrency(*, chaos: Chaos) -> int:
    """The running worker's pool processes (its main process's children)."""
    return len(chaos.stack.pids("worker")) - 1


def _closed_day_key_unmark(*, dsn: str) -> str:
    """Yesterday's partition key, marked not packed (as before its first pack): the pack
    task then has one rebuild to do."""
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        key = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass AND indisprimary",
            [f"tracking_ping_p{yesterday:%Y%m%d}"],
        ).fetchone()[0]
        conn.execute(f'COMMENT ON INDEX "{key}" IS NULL')
    return key


def _reindex_waiting(*, dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'REINDEX%%' AND wait_event_type IS NOT NULL"
        ).fetchone()[0]


def _wait_for(condition, *, timeout_s: float):
    """The condition's first truthy value, or its last value at the deadline."""
    deadline = time.time() + timeout_s
    while True:
        value = condition()
        if value or time.time() > deadline:
            return value
        time.sleep(0.5)


@dataclass
class Blocked:
    """A database session waiting for the lock holder."""

    pid: int
    client_port: int
    # It has written (holds a transaction id): a batch's transaction, mid-way.
    wrote: bool


class RowsLock:
    """A session holding FOR UPDATE locks on couriers' last-location rows, as a long
    transaction of another service would."""

    def __init__(self, *, conn: psycopg.Connection, dsn: str):
        self.conn, self.dsn, self.began = conn, dsn, time.time()

    def blocked(self) -> list[Blocked]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, client_port, backend_xid IS NOT NULL FROM pg_stat_activity "
                "WHERE %s = ANY(pg_blocking_pids(pid))",
                [self.conn.info.backend_pid],
            ).fetchall()
        return [Blocked(pid=pid, client_port=port, wrote=wrote) for pid, port, wrote in rows]

    def blocked_wait(self, *, count: int, timeout_s: float) -> list[Blocked]:
        """The sessions blocked once `count` of them are, or at the deadline."""
        deadline = time.time() + timeout_s
        while True:
            blocked = self.blocked()
            if len(blocked) >= count or time.time() > deadline:
                return blocked
            time.sleep(0.05)


@contextmanager
def rows_locked(*, dsn: str, courier_ids: list[str]) -> Iterator[RowsLock]:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "SELECT courier_id FROM tracking_courierlastlocation WHERE courier_id = ANY(%s) FOR UPDATE", [courier_ids]
        )
        try:
            yield RowsLock(conn=conn, dsn=dsn)
        finally:
            conn.rollback()


@dataclass
class LogMark:
    """A place in a stack process's log: what it wrote since."""

    path: Path
    offset: int

    @classmethod
    def at(cls, *, chaos: Chaos, name: str) -> LogMark:
        path = chaos.stack.logs / f"{name}.log"
        return cls(path=path, offset=path.stat().st_size)

    def count(self, needle: str) -> int:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            return log.read().count(needle.encode())


def queue_depth(*, chaos: Chaos) -> int:
    if chaos.transport == "sqs":
        return chaos.sqs.queue_depth(url=chaos.stack.env.broker["SQS_PINGS_QUEUE_URL"])
    return chaos.redis.queue_depth(queue="pings")


def publish(*, chaos: Chaos, args: list[str]) -> None:
    """bench/chaos/publish.py with the stack's environment (its broker)."""
    subprocess.run(
        [sys.executable, "-m", "bench.chaos.publish", *args],
        cwd=ROOT, env={**os.environ, **chaos.stack.env.variables()}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def broker_frozen_expectations(*, summary: dict) -> list[str]:
    failures = []
    if summary["slow_answers"]:
        failures.append(f"{summary['slow_answers']} answers took over 5 s (or never came) while the broker hung")
    if not summary["statuses"].get("503"):
        failures.append("no 503 while the broker was unreachable")
    return failures


POISON_SQL = """
CREATE TABLE IF NOT EXISTS chaos_poison (event_id uuid PRIMARY KEY);
CREATE OR REPLACE FUNCTION chaos_poison_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM chaos_poison WHERE event_id = NEW.event_id) THEN
        RAISE EXCEPTION 'value out of range for ping %', NEW.event_id USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS chaos_poison_refuse ON tracking_ping;
CREATE TRIGGER chaos_poison_refuse BEFORE INSERT ON tracking_ping
    FOR EACH ROW EXECUTE FUNCTION chaos_poison_refuse();
"""


def poison_arm(*, dsn: str, event_ids: list[str]) -> None:
    """Make the database refuse these pings with the error a float overflow gives (SQLSTATE
    22003), whatever the API's validation lets through: the scenario tests the worker's
    handling of a refused ping, not which values are refused."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(POISON_SQL)
        conn.execute("INSERT INTO chaos_poison SELECT unnest(%s::uuid[])", [event_ids])


def poison_disarm(*, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS chaos_poison_refuse ON tracking_ping")
        conn.execute("DROP TABLE IF EXISTS chaos_poison")


def poison_then_replay(chaos: Chaos, fleet: Fleet, load: Load, outcome: Outcome) -> set[str]:
    """Steps: wait for every accepted ping but the poison to be stored; the poison pings
    must be in the dead-letter store, not replayed; fix the cause (the database accepts them
    now); `manage.py replay_dead_letters --all`; every accepted ping must then be stored.
    Returns the poison pings still left out (all of them when the replay cannot run)."""
    dsn = chaos.env.psycopg_dsn
    poison = {str(e) for e in load.spec.poison_event_ids}
    accepted_poison = {row[1] for row in checks.accepted_rows(out=load.out)} & poison
    if len(accepted_poison) != len(poison):
        outcome.failures.append(f"only {len(accepted_poison)} of {len(poison)} poison pings were sent and accepted")
    healthy = checks.accepted_rows(out=load.out, leave_out=poison)
    if checks.caught_up_wait(dsn=dsn, rows=healthy, since=time.time(), timeout_s=30) is None:
        outcome.failures.append("the poison pings' neighbours were not all stored")
    letters, why = checks.dead_letters_read(dsn=dsn, courier_ids=fleet.courier_ids)
    if letters is None:
        outcome.failures.append(why)
        poison_disarm(dsn=dsn)
        return accepted_poison
    if set(letters) != accepted_poison or any(letters.values()):
        outcome.failures.append(f"dead letters {sorted(letters)} are not the {len(accepted_poison)} poison pings")
    poison_disarm(dsn=dsn)
    fixed = time.time()
    replay = subprocess.run(
        [sys.executable, "manage.py", "replay_dead_letters", "--all"],
        cwd=ROOT, env={**os.environ, **chaos.stack.env.variables()}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    outcome.notes.append(f"replay: {(replay.stdout.strip().splitlines() or [replay.stderr.strip()[-200:]])[-1]}")
    if replay.returncode:
        outcome.failures.append(f"replay_dead_letters exited {replay.returncode}")
        return accepted_poison
    everything = checks.accepted_rows(out=load.out)
    outcome.recover_s = checks.caught_up_wait(dsn=dsn, rows=everything, since=fixed, timeout_s=chaos.plan.converge_s)
    letters, _ = checks.dead_letters_read(dsn=dsn, courier_ids=fleet.courier_ids)
    if not all(letters.values()):
        outcome.failures.append("dead letters not marked replayed after the replay")
    return set()
