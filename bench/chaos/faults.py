"""The faults, each injected `FAULT_AT_S` into its scenario's load and then repaired, and
the poison scenario's database side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from bench.chaos import checks
from bench.chaos.scenarios import ROOT, Chaos, Fault, Load, Outcome
from bench.fixtures import Fleet

FAULT_AT_S = 8.0
POSTGRES_DOWN_S = 20.0
REDIS_DOWN_S = 3.0
BROKER_FROZEN_S = 12.0


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def worker_kill(chaos: Chaos, started: float) -> Fault:
    """SIGKILL the worker and its pool while a batch is being written, then start a new one.
    "Mid-batch" is seen in PostgreSQL: a transaction of the chaos database that has written
    (holds a transaction id); the web only reads, so it is the worker's."""
    _sleep_until(started + FAULT_AT_S)
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


def postgres_stop(chaos: Chaos, started: float) -> Fault:
    """`pg_ctl stop -m fast` (every session ends), POSTGRES_DOWN_S, then start again."""
    why = chaos.postgres.discover()
    if why:
        return Fault(failures=[f"PostgreSQL cannot be stopped here: {why}"])
    return _outage(started=started, begin=chaos.postgres.stop, end=chaos.postgres.start, seconds=POSTGRES_DOWN_S)


def redis_restart(chaos: Chaos, started: float) -> Fault:
    """Redis (broker, cache, channel layer) crashes and comes back REDIS_DOWN_S later from
    its append-only file."""
    return _outage(started=started, begin=chaos.redis.kill, end=chaos.redis.start, seconds=REDIS_DOWN_S)


def broker_frozen(chaos: Chaos, started: float) -> Fault:
    """The broker stops answering for BROKER_FROZEN_S (connections hang instead of being
    refused). The API must say 503 with Retry-After quickly; slow answers are failures here."""
    return _outage(started=started, begin=chaos.redis.freeze, end=chaos.redis.thaw, seconds=BROKER_FROZEN_S)


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
        cwd=ROOT, env={**os.environ, **chaos.env.variables()}, capture_output=True, text=True, timeout=300,
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
