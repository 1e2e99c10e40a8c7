"""`make chaos`: start the stack as `make run` does (DJANGO_DEBUG=0, its own database and a
Redis that fsyncs every write), run each fault scenario under a steady load, print the
table, write it into the docs, and exit non-zero when any invariant failed.
`make soak` runs the long steady load instead.

Every scenario runs on each broker in turn, SQS (moto's server, production's broker) and
Redis; each row of the table names its transport.

    python -m bench.chaos.run [--only worker_kill,postgres_stop,...] [--transport sqs|redis]
                              [--soak [--soak-minutes 30]]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from bench.chaos import faults
from bench.chaos.report import details_render, report_write, section_render, table_render
from bench.chaos.scenarios import ROOT, TRANSPORT_LABELS, Chaos, Fault, Outcome, Plan, scenario_run
from bench.chaos.services import ChaosRedis, PostgresCluster, SqsEmulator
from bench.chaos.soak import soak_watch
from bench.fixtures import database_migrate, django_setup
from bench.stack import BenchEnv, Stack, bench_database_recreate, bench_env_build

LOCAL = ROOT / ".local" / "chaos"
DATABASE = "ze_chaos"
# A dead worker's messages come back after the visibility timeout: 300 s in production,
# shortened here so that they do within the run. The retry cap and task time limit shrink
# with it, keeping the ratio the settings enforce (a retry waits well inside the timeout).
STACK_SETTINGS = {
    "CELERY_VISIBILITY_TIMEOUT": "40",
    "TASK_RETRY_BACKOFF_MAX_S": "5",
    "PING_TASK_SOFT_TIME_LIMIT_S": "12",
    "PING_TASK_TIME_LIMIT_S": "15",
    "NOTIFICATIONS_RETRY_BACKOFF_MAX_S": "5",
    "CELERY_TASK_SOFT_TIME_LIMIT": "12",
    "CELERY_TASK_TIME_LIMIT": "15",
}


@dataclass
class ChaosEnv(BenchEnv):
    # `broker` (BenchEnv's) holds SQS's variables while the stack runs on it (stack_on).
    def variables(self) -> dict[str, str]:
        return {**super().variables(), **STACK_SETTINGS, "DJANGO_SETTINGS_MODULE": "bench.chaos.settings"}


SCENARIOS = (
    "worker_kill", "postgres_stop", "redis_restart", "broker_unreachable", "poison_ping", "broker_drop",
    "undecodable", "soft_time_limit", "child_kill", "database_read_only", "maintenance_long",
)  # fmt: skip
# Production's broker first. Each transport gets fresh queues and a restarted stack.
TRANSPORTS = ("sqs", "redis")
BROKER_DESCRIPTIONS = {
    "sqs": "the broker is SQS (moto's server), production's",
    "redis": "the broker is a Redis with appendfsync always",
}
# Run on Redis only when asked for by name: they can lose a message through REDIS_POP_LOSS,
# so a default run (CI's) would fail on a limit of the local broker, not of the product.
REDIS_ON_REQUEST = {"worker_kill", "broker_drop"}
REDIS_POP_LOSS = (
    "kombu's Redis transport pops a message (BRPOP) before recording it unacknowledged: a worker "
    "killed, or a connection dropped, in that instant loses it (docs/RELIABILITY.md); SQS hides "
    "a received message instead"
)


def scenario_table(*, chaos: Chaos) -> dict:
    plan = chaos.plan
    redis_role = "Redis (broker) crashed" if chaos.transport == "redis" else "Redis (cache, channel layer) crashed"
    return {
        "worker_kill": lambda: redis_loss_explained(chaos=chaos, outcome=scenario_run(
            chaos=chaos, name="worker_kill", title="worker SIGKILLed mid-batch, restarted", seconds=25,
            fault=faults.worker_kill,
        )),
        "postgres_stop": lambda: scenario_run(
            chaos=chaos, name="postgres_stop", title=f"PostgreSQL stopped {faults.POSTGRES_DOWN_S:.0f} s",
            seconds=40, fault=faults.postgres_stop,
        ),
        "redis_restart": lambda: scenario_run(
            chaos=chaos, name="redis_restart", title=f"{redis_role} and restarted", seconds=25,
            fault=faults.redis_restart,
        ),
        "broker_unreachable": lambda: scenario_run(
            chaos=chaos, name="broker_unreachable",
            title=f"broker unreachable {faults.BROKER_FROZEN_S:.0f} s (connections hang)", seconds=30,
            fault=faults.broker_frozen, expect=faults.broker_frozen_expectations,
        ),
        "poison_ping": lambda: scenario_run(
            chaos=chaos, name="poison_ping", title="poison pings in batches, dead-lettered, replayed", seconds=20,
            fault=lambda chaos, fleet, load: Fault(), after=faults.poison_then_replay,
            client={"poison_event_ids": poison_ids(dsn=chaos.env.psycopg_dsn, count=3)},
            dead_letters_expected=True,
        ),
        "broker_drop": lambda: redis_loss_explained(chaos=chaos, outcome=scenario_run(
            chaos=chaos, name="broker_drop", title="broker connection dropped while a pool process is blocked",
            seconds=25, fault=faults.broker_drop,
        )),
        "undecodable": lambda: scenario_run(
            chaos=chaos, name="undecodable", title="undecodable message in a deep queue, dead-lettered",
            seconds=25, fault=faults.undecodable, dead_letters_expected=True,
        ),
        "soft_time_limit": lambda: scenario_run(
            chaos=chaos, name="soft_time_limit",
            title=f"rows locked past the soft time limit ({STACK_SETTINGS['PING_TASK_SOFT_TIME_LIMIT_S']} s)",
            seconds=35, fault=faults.soft_time_limit,
        ),
        "child_kill": lambda: scenario_run(
            chaos=chaos, name="child_kill", title="pool process SIGKILLed mid-batch", seconds=22,
            fault=faults.child_kill,
        ),
        "database_read_only": lambda: scenario_run(
            chaos=chaos, name="database_read_only", title=f"database read-only {faults.READ_ONLY_S:.0f} s (failover)",
            seconds=38, fault=faults.database_read_only,
        ),
        "maintenance_long": lambda: scenario_run(
            chaos=chaos, name="maintenance_long", title="maintenance task outlives the visibility timeout",
            seconds=70, fault=faults.maintenance_long,
        ),
        "soak": lambda: scenario_run(
            chaos=chaos, name="soak", title=f"soak {plan.soak_s / 60:.0f} min at {plan.rate:,.0f} pings/s",
            seconds=plan.soak_s, fault=soak_watch(seconds=plan.soak_s),
        ),
    }  # fmt: skip


def redis_loss_explained(*, chaos: Chaos, outcome: Outcome) -> Outcome:
    """A worker killed, or its connection dropped, on Redis may lose the message it had just
    popped: still a failure, with its known cause beside it."""
    if chaos.transport == "redis" and outcome.lost:
        outcome.notes.append(f"{outcome.lost} pings lost: {REDIS_POP_LOSS}")
    return outcome


def stack_on(*, chaos: Chaos, transport: str) -> None:
    """Restart the stack on this broker: SQS (moto's server, fresh queues with the run's
    visibility timeout, as deploy/ passes them) or the run's Redis."""
    broker = {}
    if transport == "sqs":
        chaos.sqs.start()
        broker = chaos.sqs.queues_create(
            prefix=f"ze-chaos-{uuid.uuid4().hex[:6]}",
            visibility_timeout_s=int(STACK_SETTINGS["CELERY_VISIBILITY_TIMEOUT"]),
        )
    chaos.stack.stop()
    chaos.stack.env = replace(chaos.stack.env, broker=broker)
    chaos.transport = transport
    chaos.stack.start("web", "worker", "beat")


def poison_ids(*, dsn: str, count: int) -> list[str]:
    import uuid

    ids = [str(uuid.uuid4()) for _ in range(count)]
    faults.poison_arm(dsn=dsn, event_ids=ids)
    return ids


def arguments_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--transport", choices=TRANSPORTS, help="one broker only (default: each in turn)")
    parser.add_argument("--soak", action="store_true", help="the long steady load instead of the faults")
    parser.add_argument("--soak-minutes", type=float, default=30.0)
    parser.add_argument(
        "--soak-rate", type=float, default=1000.0,
        help="pings/s of the soak; the local SQS server slows down as its queue grows (moto scans it on "
        "every receive), so on SQS choose a rate it keeps up with",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=int(os.environ.get("CHAOS_PORT", "8320")))
    parser.add_argument("--no-report", action="store_true", help="print the table, leave docs/ alone")
    args = parser.parse_args(argv)
    args.chosen = ["soak"] if args.soak else [s for s in args.only.split(",") if s] or list(SCENARIOS)
    args.transports = [args.transport] if args.transport else ["redis"] if args.soak else list(TRANSPORTS)
    unknown = set(args.chosen) - {*SCENARIOS, "soak"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def stack_heal(*, chaos: Chaos) -> None:
    """Whatever a failed scenario left broken is repaired before the next one."""
    if chaos.postgres.data_directory and not chaos.postgres.answering():
        chaos.postgres.start()
    if chaos.postgres.data_directory:
        faults.database_read_only_set(dsn=chaos.env.psycopg_dsn, on=False)
    if chaos.redis.pid is None:
        chaos.redis.start()
    else:
        chaos.redis.thaw()
    chaos.sqs.thaw()
    for name in ("web", "worker", "beat"):
        if name not in chaos.stack.running():
            chaos.stack.processes.pop(name, None)
            chaos.stack.start(name)


def main(argv: list[str]) -> int:
    args = arguments_parse(argv)
    # Stopped from outside (CI's timeout): still run `finally`, which restores what was broken.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # PORT+1 and PORT+2 are the web tier's own servers (scripts/web.sh).
    redis = ChaosRedis(port=args.port + 3, folder=LOCAL / "redis")
    redis.start(fresh=True)
    env = bench_env_build(web_port=args.port)
    database = urlunsplit(urlsplit(env.database_url)._replace(path=f"/{DATABASE}"))
    env = ChaosEnv(database_url=database, redis_url=redis.url, web_port=env.web_port)
    plan = Plan(couriers=50, rate=args.soak_rate, batch=50, soak_s=args.soak_minutes * 60) if args.soak else Plan()
    print(f"==> chaos database {DATABASE}, Redis {redis.url}, web on {env.web_url}, logs in {LOCAL}", flush=True)
    bench_database_recreate(env=env)
    django_setup(env=env)
    database_migrate()
    stack = Stack(env=env, logs=LOCAL / "logs")
    # PORT+3 is the run's Redis, PORT+4 moto's SQS.
    sqs = SqsEmulator(port=args.port + 4, folder=LOCAL / "sqs")
    chaos = Chaos(
        env=env, stack=stack, redis=redis, postgres=PostgresCluster(dsn=env.psycopg_dsn), plan=plan, workdir=LOCAL,
        sqs=sqs,
    )  # fmt: skip
    chaos.postgres.discover()
    outcomes: list[Outcome] = []
    began = time.time()
    try:
        for transport in args.transports:
            stack_on(chaos=chaos, transport=transport)
            table = scenario_table(chaos=chaos)
            for name in args.chosen:
                if transport == "redis" and name in REDIS_ON_REQUEST and args.only.split(",") != [name]:
                    outcomes.append(Outcome(
                        name=name, title=f"{name} ({TRANSPORT_LABELS[transport]})", transport=transport,
                        not_run=f"{REDIS_POP_LOSS}; a known limit of the local broker, so it is run only when named "
                        f"alone (make chaos ONLY={name} ARGS='--transport redis')",
                    ))  # fmt: skip
                    continue
                stack_heal(chaos=chaos)
                try:
                    outcomes.append(table[name]())
                except Exception as exc:  # noqa: BLE001 (the harness's own failure is a failed scenario)
                    traceback.print_exc()
                    outcomes.append(Outcome(
                        name=name, title=f"{name} ({TRANSPORT_LABELS[transport]})", transport=transport,
                        failures=[f"harness error {type(exc).__name__}: {exc}"],
                    ))  # fmt: skip
    finally:
        stack_heal(chaos=chaos)
        faults.poison_disarm(dsn=env.psycopg_dsn)
        stack.stop()
        redis.stop()
        sqs.stop()
    # One row per scenario and transport, in the scenarios' order.
    order = [*SCENARIOS, "soak"]
    outcomes.sort(key=lambda o: (order.index(o.name), TRANSPORTS.index(o.transport)))
    print(
        f"\n{table_render(outcomes=outcomes)}\n\n{details_render(outcomes=outcomes)}\n\n({time.time() - began:.0f} s)"
    )
    if not args.no_report:
        command = "make soak" if args.soak else "make chaos"
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        setup = (
            f"{plan.couriers} couriers, {plan.rate:,.0f} pings/s in batches of {plan.batch}; the stack runs "
            f"with CELERY_VISIBILITY_TIMEOUT={STACK_SETTINGS['CELERY_VISIBILITY_TIMEOUT']} s (production: 300 s) "
            "and kombu's unacked-message sweep every 5 s (bench/chaos/settings.py), so that a dead worker's "
            f"messages come back within the run, and PING_TASK_SOFT_TIME_LIMIT_S="
            f"{STACK_SETTINGS['PING_TASK_SOFT_TIME_LIMIT_S']} s; "
            + ", then ".join(BROKER_DESCRIPTIONS[t] for t in args.transports)
            + " (bench/chaos/run.py, stack_on)."
        )
        title = "## Soak results" if args.soak else "## Chaos results"
        section = section_render(
            title=title, outcomes=outcomes, command=command, commit=commit.stdout.strip(), setup=setup
        )
        page = report_write(title=title, section=section)
        print(f"==> wrote {page.relative_to(ROOT)}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
