"""`make bench`: start the stack, run each measurement, stop what it started, write
docs/PERFORMANCE.md and its plots under docs/performance/.

    python bench/run.py [--quick] [--soak] [--only e2e,api,worker,freshness,reads,naive,bytes,soak,live]

`live` (the backoffice map and the tracking-link sockets, on a fleet of its own) runs only
when named, and writes only the live section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.config import MEASUREMENTS, NORMAL, QUICK  # noqa: E402
from bench.fixtures import database_migrate, django_setup, fleet_create  # noqa: E402
from bench.probes import Sampler  # noqa: E402
from bench.stack import LOGS, Stack, bench_database_recreate, bench_env_build  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Only a full run replaces the committed report; a quick or partial one writes beside the logs.
PUBLISHED = ROOT / "docs" / "performance"
SCRATCH = LOGS / "report" / "performance"
# The per-process figures of the SQS path that the cost model and the scaling targets read
# (deploy/ze_infra/capacity.py): written by any run on SQS that measures api and worker.
CAPACITY = PUBLISHED / "capacity.json"


def arguments_parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, for iterating on the suite")
    parser.add_argument("--soak", action="store_true", help="add a 10-minute load watching memory")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(MEASUREMENTS)}")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the worker")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8310")))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results.json")
    parser.add_argument(
        "--broker", choices=("redis", "sqs"), default="redis",
        help="the stack's broker: the checkout's Redis (make run's), or SQS on the local SQS server (production's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # The live side has its own fleet and takes minutes: only when asked (ONLY=live).
    default = [m for m in MEASUREMENTS if m != "live" and (m != "soak" or args.soak)]
    chosen = [m for m in args.only.split(",") if m] or default
    unknown = set(chosen) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    args.chosen = [m for m in MEASUREMENTS if m in chosen]
    return args


def measurements_table() -> dict[str, Callable]:
    from bench.measurements.freshness import freshness_measure
    from bench.measurements.ingest import api_measure, e2e_measure, naive_measure, worker_measure
    from bench.measurements.live import live_measure
    from bench.measurements.memory import soak_measure
    from bench.measurements.reads import reads_measure
    from bench.measurements.storage import bytes_measure

    return {
        "e2e": e2e_measure,
        "api": api_measure,
        "worker": worker_measure,
        "freshness": freshness_measure,
        "reads": reads_measure,
        "naive": naive_measure,
        "bytes": bytes_measure,
        "soak": soak_measure,
        "live": live_measure,
    }


def bench_run(args: argparse.Namespace, command: str, out: Path) -> dict:
    """Steps: a fresh bench database with the fleet; the stack; each measurement in turn
    (one failing does not stop the others); stop everything; keep the raw results."""
    from dataclasses import replace

    from bench.measurements.base import Bench
    from bench.series import series_build

    plan = QUICK if args.quick else NORMAL
    if args.no_profile:
        plan = replace(plan, profile_s=0.0)
    env = bench_env_build(web_port=args.port)
    sqs = None
    if args.broker == "sqs":
        import uuid

        from bench.chaos.services import SqsEmulator

        sqs = SqsEmulator(port=args.port + 4, folder=LOGS / "moto")
        sqs.start()
        env.broker = sqs.queues_create(prefix=f"ze-bench-{uuid.uuid4().hex[:6]}", visibility_timeout_s=300)
        print(f"==> broker: SQS on {sqs.endpoint}")
    print(f"==> bench database {env.database_url.rsplit('/', 1)[-1]}, web on {env.web_url}, logs in {LOGS}")
    bench_database_recreate(env=env)
    django_setup(env=env)
    database_migrate()
    fleet = fleet_create(couriers=plan.couriers)
    stack = Stack(env=env)
    sampler = Sampler(env=env, stack=stack, courier_ids=fleet.courier_ids)
    bench = Bench(env=env, stack=stack, fleet=fleet, plan=plan, sampler=sampler, workdir=LOGS / "runs", out=out)
    load_before = os.getloadavg()
    began = time.time()
    sampler.start()
    failures = {}
    try:
        table = measurements_table()
        for name in args.chosen:
            try:
                table[name](bench)
            except Exception as exc:  # noqa: BLE001 (reported, and the other measurements still run)
                failures[name] = f"{type(exc).__name__}: {exc}"
                print(f"    [{name}] FAILED: {failures[name]}", flush=True)
    finally:
        stack.stop()
        sampler.stop()
        if sqs is not None:
            sqs.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "command": command,
        "broker": args.broker,
        "commit": commit.stdout.strip(),
        "quick": plan.quick,
        "measured": args.chosen,
        "failures": failures,
        "started_at": began,
        "seconds": round(time.time() - began, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "plan": {k: v for k, v in vars(plan).items()},
        "results": bench.results,
        "series": series_build(bench=bench),
    }


def capacity_write(*, data: dict) -> None:
    """The web's requests/s per gunicorn process (worker stopped) and one worker's batches/s
    from a full queue, on the SQS path; a run that did not measure both leaves the file."""
    results = data["results"]
    if data["broker"] != "sqs" or not {"api", "worker"} <= results.keys() or data["failures"]:
        return
    processes = int(os.environ.get("WEB_CONCURRENCY") or data["cpus"])  # scripts/web.sh's default
    batch = data["plan"]["batch"]
    api, worker = results["api"], results["worker"]
    CAPACITY.write_text(
        json.dumps(
            {
                "command": data["command"],
                "commit": data["commit"],
                "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(data["started_at"])),
                "quick": data["quick"],
                "cpus": data["cpus"],
                "load_average_before": [round(x, 2) for x in data["load_average_before"]],
                "pings_per_batch": batch,
                "web_processes": processes,
                "web_requests_per_s_per_process": round(api["requests_per_s"] / processes, 1),
                "web_latency_ms_p50": api["latency_ms"]["p50"],
                "worker_concurrency": worker["concurrency"],
                "worker_batches_per_s": round(worker["pings_per_s"] / batch, 1),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"==> wrote {CAPACITY.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    args = arguments_parse(argv)
    # The Makefile says how it was called; run directly, the command is this script's.
    command = os.environ.get("BENCH_COMMAND") or " ".join(["python bench/run.py", *argv])
    out = SCRATCH if args.quick or args.only else PUBLISHED
    results = out / "results.json"
    if not args.report_only:
        data = bench_run(args, command, out)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(data, indent=1, default=str))
    from bench.report import report_write

    data = json.loads(results.read_text())
    capacity_write(data=data)
    if "live" in data["measured"]:
        from bench.report_live import live_section_write

        path = live_section_write(data=data, report=PUBLISHED.parent / "PERFORMANCE.md", plots=PUBLISHED)
    else:
        path = report_write(data=data, out=out)
    print(f"==> wrote {path.relative_to(ROOT)}")
    return 1 if data["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
