"""One scenario: a fresh fleet, the load running in its own process, a fault injected and
repaired while it runs, then the invariants. `Outcome` is one row of the table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.chaos import checks
from bench.chaos.client import ClientSpec
from bench.chaos.services import ChaosRedis, PostgresCluster, SqsEmulator
from bench.fixtures import Fleet, fleet_create
from bench.stack import BenchEnv, Stack

ROOT = Path(__file__).resolve().parents[2]
TRANSPORT_LABELS = {"sqs": "SQS", "redis": "Redis"}


@dataclass
class Plan:
    couriers: int = 20
    rate: float = 300.0
    batch: int = 25
    # How long the stored set may take to catch up with the accepted one after a repair.
    converge_s: float = 90.0
    # How soon after a repair the worker must store pings again.
    resume_s: float = 30.0
    soak_s: float = 1800.0


@dataclass
class Chaos:
    env: BenchEnv
    stack: Stack
    redis: ChaosRedis
    postgres: PostgresCluster
    plan: Plan
    workdir: Path
    sqs: SqsEmulator | None = None
    # The stack's broker: "sqs" (moto's server) or "redis" (the run's Redis).
    transport: str = "redis"


@dataclass
class Fault:
    """What a fault did: when it began and ended (epoch s), and anything to report."""

    began: float | None = None
    repaired: float | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The fault's own checks, run once the scenario's pings are stored: (failures, notes).
    verify: Callable[[], tuple[list[str], list[str]]] | None = None


@dataclass
class Outcome:
    name: str
    title: str
    transport: str = ""
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    # From the repair until the worker stores pings again, and until every ping accepted
    # before the repair is stored (or dead-lettered).
    resumed_s: float | None = None
    caught_up_s: float | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Why the scenario was not run on this transport (it is then neither passed nor failed).
    not_run: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Load:
    spec: ClientSpec
    out: Path
    process: subprocess.Popen
    started: float

    def wait(self) -> dict:
        self.process.wait(timeout=self.spec.seconds + self.spec.give_up_s + 120)
        return json.loads((self.out / "summary.json").read_text())


def load_start(*, chaos: Chaos, name: str, fleet: Fleet, seconds: float, **extra) -> Load:
    plan = chaos.plan
    out = chaos.workdir / name
    out.mkdir(parents=True, exist_ok=True)
    spec = ClientSpec(
        url=f"{chaos.env.web_url}/api/v1/locations",
        tokens=fleet.tokens,
        courier_ids=fleet.courier_ids,
        device_origin=fleet.device_origin,
        rate=extra.pop("rate", plan.rate),
        batch=extra.pop("batch", plan.batch),
        seconds=seconds,
        **extra,
    )
    (out / "spec.json").write_text(json.dumps(asdict(spec)))
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.chaos.client", str(out / "spec.json"), str(out)],
        cwd=ROOT,
        stdout=open(out / "client.log", "w"),  # noqa: SIM115 (the child owns it)
        stderr=subprocess.STDOUT,
    )
    return Load(spec=spec, out=out, process=process, started=time.time())


def fleet_fresh(*, couriers: int, prefix: str) -> Fleet:
    """New couriers and orders for each scenario, so its checks see only its own pings. The
    database may have restarted since the last one: reconnect first."""
    from django.db import connections

    connections.close_all()
    return fleet_create(couriers=couriers, prefix=prefix)


def scenario_run(
    *,
    chaos: Chaos,
    name: str,
    title: str,
    seconds: float,
    fault: Callable[[Chaos, Fleet, Load], Fault],
    client: dict | None = None,
    after: Callable[[Chaos, Fleet, Load, Outcome], set[str]] | None = None,
    expect: Callable[..., list[str]] | None = None,
    dead_letters_expected: bool = False,
) -> Outcome:
    """Steps: fleet; load; the fault (injected and repaired while the load runs); time until
    the worker stores pings again (at most `plan.resume_s`), and until every ping accepted
    before the repair is stored; the load's end; the rest stored; `after` (returns accepted
    pings not expected in the table); the fault's own checks; the invariants, and
    `expect`'s own checks of the load's answers. Only a scenario that sends what is refused
    for good (`dead_letters_expected`) may dead-letter accepted pings: a transient fault
    must end with them stored."""
    label = TRANSPORT_LABELS.get(chaos.transport, chaos.transport)
    outcome = Outcome(name=name, title=f"{title} ({label})", transport=chaos.transport)
    print(f"==> {name} on {label}: {title}", flush=True)
    fleet = fleet_fresh(couriers=chaos.plan.couriers, prefix=f"chaos-{name}-{chaos.transport}")
    dsn = chaos.env.psycopg_dsn
    fleet_made = checks.fleet_pings(dsn=dsn, courier_ids=fleet.courier_ids)
    load = load_start(chaos=chaos, name=f"{name}-{chaos.transport}", fleet=fleet, seconds=seconds, **(client or {}))
    try:
        done = fault(chaos, fleet, load)
    except Exception as exc:  # noqa: BLE001 (reported as the scenario's failure)
        done = Fault(failures=[f"the fault could not be injected: {type(exc).__name__}: {exc}"])
    outcome.failures += done.failures
    outcome.notes += done.notes
    # Without a web or a worker nothing more gets stored; beat is not on the path.
    hopeless = lambda: bool(processes_exited(stack=chaos.stack, names=("web", "worker")))  # noqa: E731
    if done.repaired is not None:
        outcome.resumed_s = checks.resumed_wait(
            dsn=dsn, courier_ids=fleet.courier_ids, out=load.out, before=len(fleet_made), since=done.repaired,
            timeout_s=chaos.plan.resume_s, batch=chaos.plan.batch,
        )  # fmt: skip
        if outcome.resumed_s is None:
            outcome.failures.append(f"the worker stored nothing within {chaos.plan.resume_s:.0f} s of the repair")
        outcome.caught_up_s = checks.caught_up_wait(
            dsn=dsn,
            rows=checks.accepted_rows(out=load.out, answered_before=done.repaired),
            since=done.repaired,
            timeout_s=max(0.0, done.repaired + chaos.plan.converge_s - time.time()),
            hopeless=hopeless,
        )
        if outcome.caught_up_s is None:
            outcome.failures.append(f"not caught up within {chaos.plan.converge_s:.0f} s of the repair")
        if done.began is not None:
            outcome.notes.append(f"fault lasted {done.repaired - done.began:.1f} s")
    tally = load.wait()
    leave_out: set[str] = set()
    if after is None:
        # Once catching up has failed, a short look is enough to count what is missing.
        wait_s = chaos.plan.converge_s if outcome.caught_up_s is not None or done.repaired is None else 10.0
        checks.caught_up_wait(dsn=dsn, rows=checks.accepted_rows(out=load.out), since=0, timeout_s=wait_s)
    else:
        leave_out = after(chaos, fleet, load, outcome)
    if done.verify is not None:
        try:
            failures, notes = done.verify()
        except Exception as exc:  # noqa: BLE001 (reported as the scenario's failure)
            failures, notes = [f"the fault's check failed: {type(exc).__name__}: {exc}"], []
        outcome.failures += failures
        outcome.notes += notes
    counts = checks.counts_measure(
        dsn=dsn,
        out=load.out,
        courier_ids=fleet.courier_ids,
        order_ids=fleet.order_ids,
        leave_out=leave_out,
        before=fleet_made,
    )
    outcome.sent, outcome.accepted = tally["sent"], tally["accepted"]
    outcome.stored, outcome.lost, outcome.duplicated = counts.stored, counts.lost, counts.duplicated
    outcome.dead_lettered = counts.dead_lettered
    outcome.failures += invariant_failures(counts=counts, tally=tally)
    if counts.dead_lettered and not dead_letters_expected:
        outcome.failures.append(
            f"{counts.dead_lettered} accepted pings dead-lettered by a transient fault (they should have been retried)"
        )
    outcome.failures += expect(summary=tally) if expect else []
    outcome.failures += processes_exited(stack=chaos.stack)
    outcome.notes += tally_notes(tally=tally)
    outcome.notes += counts.examples
    print(f"    {'ok' if outcome.passed else 'FAILED: ' + '; '.join(outcome.failures)}", flush=True)
    return outcome


def processes_exited(*, stack: Stack, names: tuple[str, ...] = ("web", "worker", "beat")) -> list[str]:
    """Processes of the stack that ended on their own (the harness heals them before the
    next scenario), with the last error line of their log."""
    failures = []
    for name, process in stack.processes.items():
        if name not in names or process.poll() is None:
            continue
        lines = (stack.logs / f"{name}.log").read_text(errors="replace").splitlines()
        errors = [line for line in lines if "CRITICAL" in line or "Unrecoverable" in line] or lines[-1:]
        failures.append(f"the {name} process exited (code {process.returncode}): {log_message(errors[-1:])[:200]}")
    return failures


def log_message(lines: list[str]) -> str:
    """The message of a log line, JSON (production logging) or plain."""
    if not lines:
        return ""
    try:
        return str(json.loads(lines[0])["message"])
    except (ValueError, KeyError, TypeError):
        return lines[0]


def invariant_failures(*, counts: checks.Counts, tally: dict) -> list[str]:
    failures = []
    if counts.lost:
        failures.append(f"{counts.lost} accepted pings neither stored nor dead-lettered when the scenario ended")
    if counts.duplicated:
        failures.append(f"{counts.duplicated} pings stored twice")
    if counts.unexpected:
        failures.append(f"{counts.unexpected} stored pings were never accepted")
    if counts.last_location_wrong:
        failures.append(f"{counts.last_location_wrong} orders' last location is not their newest accepted ping")
    errors = {code: n for code, n in tally["statuses"].items() if code.startswith("5") and code != "503"}
    if errors:
        failures.append(f"server errors {errors}")
    if tally["retry_after_missing"]:
        failures.append(f"{tally['retry_after_missing']} answers 503 without Retry-After")
    if tally["unknown"]:
        failures.append(f"{tally['unknown']} pings never got an answer (given up)")
    if tally["rejected"]:
        failures.append(f"{tally['rejected']} valid pings rejected, e.g. {tally['rejections'][:1]}")
    return failures


def tally_notes(*, tally: dict) -> list[str]:
    named = {("no answer" if code == "0" else code): n for code, n in tally["statuses"].items()}
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(named.items()))
    notes = [f"{tally['requests']} requests ({statuses}); slowest answer {tally['max_answer_s']:.1f} s"]
    if tally["first_retry_at"] is not None:
        notes.append(f"client resent from {tally['first_retry_at']:.0f} s to {tally['last_retry_at']:.0f} s")
    return notes
