"""The live side at a city's evening size, on its own fleet (`plan.live_couriers`, each with
one order in transit):

- map: the backoffice map in headless Chromium (Playwright, Debian's binary): time to the
  first full picture, then while every courier pings every `live_period_s` (bench.livegen
  fleet): animation frames per second (requestAnimationFrame), main-thread tasks over 50 ms
  (Long Tasks API), the fleet socket's payload per second, the page's JS heap.
- sockets: `plan.live_sockets` tracking-link sockets (bench.livegen swarm), each following
  one of the orders of the first `plan.live_socket_couriers` couriers, while those ping:
  delay from a ping's 202 to each socket, the ASGI process's memory per open socket, then
  a reconnect storm half-way through.

Both tools talk to the ASGI server's own port (scripts/web.sh: PORT + 2), not through the
bench's nginx, whose 1,024 worker connections would cap the socket count first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench.fixtures import Fleet, fleet_create
from bench.loadgen import courier_start
from bench.measurements.base import Bench
from bench.probes import broker_connect, queue_depth
from bench.profiling import CoresSpent, process_profile, stacks_summarize
from tracking.selectors import FLEET_MAX

PAGE_PROBE = """
window.__bench = {long: [], frames: 0};
new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__bench.long.push(e.duration)))
  .observe({entryTypes: ["longtask"]});
(function frame() { window.__bench.frames++; requestAnimationFrame(frame); })();
"""
STAFF = ("bench-ops", "bench-ops-pass-123456")


def live_measure(bench: Bench) -> None:
    plan = bench.plan
    with bench.phase("live-fleet", f"{plan.live_couriers:,} couriers with an order in transit"):
        fleet = _live_fleet_create(count=plan.live_couriers)
        _staff_create()
    # With DEBUG off the stack serves static files from STATIC_ROOT only (WhiteNoise), as
    # production does after its build step: the map's scripts must be collected first.
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    bench.stack.start()
    asgi = f"http://127.0.0.1:{bench.env.web_port + 2}"
    with bench.phase("live-warm", "every courier pings once: the map draws couriers with a position"):
        spec = _fleet_spec(bench=bench, fleet=fleet, seconds=plan.live_period_s + 1)
        warm = _tool_wait(*_tool_start(bench=bench, kind="fleet", spec=spec), timeout=120)
        bench.drain_wait()
    located = len({courier for courier, _, _ in warm["acks"]})
    with bench.phase("live-map", f"backoffice map, {plan.live_couriers:,} couriers moving, {plan.live_map_s:.0f} s"):
        bench.results["live-map"] = _map_measure(bench=bench, fleet=fleet, located=located)
    bench.drain_wait()  # the map's backlog would otherwise delay the sockets' pings
    with bench.phase("live-sockets", f"{plan.live_sockets:,} tracking sockets, {plan.live_swarm_s:.0f} s, storm"):
        bench.results["live-sockets"] = _sockets_measure(bench=bench, fleet=fleet, asgi=asgi)


def _live_fleet_create(*, count: int) -> Fleet:
    # A cheap hasher for these couriers' throwaway passwords: the bench never logs them in
    # (override_settings also empties Django's cache of hashers).
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        return fleet_create(couriers=count, prefix="live")


def _staff_create() -> None:
    """An operations lead (the group the roles migration makes): the map needs its rights."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user, _ = get_user_model().objects.get_or_create(username=STAFF[0], defaults={"is_staff": True})
    user.is_staff = True
    user.set_password(STAFF[1])
    user.save()
    user.groups.add(Group.objects.get(name="Operations lead"))


def _fleet_spec(*, bench: Bench, fleet: Fleet, seconds: float, count: int | None = None) -> dict:
    """The first `count` couriers of the fleet (all by default), each pinging once a period."""
    plan = bench.plan
    count = len(fleet.tokens) if count is None else min(count, len(fleet.tokens))
    return {
        "url": bench.env.web_url + "/api/v1/locations",
        "tokens": fleet.tokens[:count],
        "order_ids": fleet.order_ids[:count],
        "starts": [courier_start(index=i) for i in range(count)],
        "device_origin": fleet.device_origin,
        "period_s": plan.live_period_s,
        "seconds": seconds,
        "connections": 64,
    }


def _tool_start(*, bench: Bench, kind: str, spec: dict) -> tuple[subprocess.Popen, Path]:
    bench.workdir.mkdir(parents=True, exist_ok=True)
    spec_path, out = bench.workdir / f"live-{kind}.spec.json", bench.workdir / f"live-{kind}.json"
    spec_path.write_text(json.dumps(spec))
    out.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "bench.livegen", kind, str(spec_path), str(out)])
    return process, out


def _tool_wait(process: subprocess.Popen, out: Path, *, timeout: float) -> dict:
    process.wait(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"bench.livegen exited {process.returncode}")
    return json.loads(out.read_text())


def _map_measure(*, bench: Bench, fleet: Fleet, located: int) -> dict:
    """Steps: log in; open /backoffice/ and time the first full picture; start the fleet;
    sample the page every second while updates flow; stop."""
    from playwright.sync_api import sync_playwright

    plan = bench.plan
    args = [
        *("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"),
        *("--disable-component-update", "--disable-sync", "--no-first-run", "--enable-precise-memory-info"),
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=bench.env.web_url)
        page.add_init_script(PAGE_PROBE)
        page.goto("/accounts/login/?next=/backoffice/")
        page.fill("#id_username", STAFF[0])
        page.fill("#id_password", STAFF[1])
        page.click("button[type=submit]")
        page.wait_for_url("**/backoffice/")
        began = time.monotonic()
        page.goto("/backoffice/")
        # Polled from here: the page's Content-Security-Policy refuses wait_for_function's eval.
        drawn = min(located, FLEET_MAX)
        everyone = f"!!window.fleet && window.fleet.stats().couriers >= {drawn}"
        while not page.evaluate(everyone):
            if time.monotonic() - began > 60:
                shown = page.evaluate("window.fleet ? window.fleet.stats() : null")
                raise RuntimeError(f"the map did not show {drawn} couriers within 60 s: {shown}")
            page.wait_for_timeout(20)
        first_picture_s = time.monotonic() - began

        spec = _fleet_spec(bench=bench, fleet=fleet, seconds=plan.live_map_s)
        tool, out = _tool_start(bench=bench, kind="fleet", spec=spec)
        cores = CoresSpent()
        cores.begin()
        samples = []
        started = time.monotonic()
        spent = None  # read just before the fleet ends: a process that has ended is not counted
        while tool.poll() is None and time.monotonic() - started < plan.live_map_s + 30:
            if spent is None and time.monotonic() - started >= plan.live_map_s - 2:
                spent = cores.finish()
            sample = page.evaluate(
                "({t: performance.now(), frames: window.__bench.frames, long: window.__bench.long.slice(),"
                " heap: performance.memory ? performance.memory.usedJSHeapSize : null, ...window.fleet.stats()})"
            )
            samples.append(sample)
            page.wait_for_timeout(1000)
        fleet_result = _tool_wait(tool, out, timeout=60)
        spent = spent or cores.finish()
        browser.close()
    # The window in which updates flowed: from the first sample after the first ping.
    first, last = samples[min(2, len(samples) - 1)], samples[-1]
    seconds = (last["t"] - first["t"]) / 1000
    long_tasks = last["long"][len(first["long"]) :]
    return {
        "couriers": drawn,
        "first_picture_s": round(first_picture_s, 2),
        "seconds": round(seconds, 1),
        "frames_per_s": round((last["frames"] - first["frames"]) / seconds, 1) if seconds else None,
        "long_tasks": len(long_tasks),
        "long_tasks_ms": round(sum(long_tasks), 0),
        "longest_task_ms": round(max(long_tasks, default=0), 0),
        "socket_messages_per_s": round((last["messages"] - first["messages"]) / seconds, 1) if seconds else None,
        "socket_kb_per_s": round((last["bytes"] - first["bytes"]) / seconds / 1000, 1) if seconds else None,
        "heap_mb": [round(s["heap"] / 1e6, 1) for s in samples if s["heap"]],
        "pings_per_s": round(fleet_result["pings_per_s"], 0),
        "ping_errors": fleet_result["errors"],
        "fleet_client_cpu_s": round(fleet_result["client_cpu_s"], 1),
        "cores": spent,
    }


def _server_processes(bench: Bench) -> dict[str, int]:
    """One process of each server role to profile: the ASGI server, a REST worker (a child
    of gunicorn's arbiter) and a worker pool process."""
    chosen: dict[str, int] = {}
    for pid in bench.stack.pids("web"):
        try:
            process = psutil.Process(pid)
            line = " ".join(process.cmdline())
            parent = " ".join(process.parent().cmdline()) if process.parent() else ""
        except psutil.NoSuchProcess:
            continue
        if "uvicorn" in line:
            chosen.setdefault("asgi", pid)
        elif "gunicorn" in line and "gunicorn" in parent:
            chosen.setdefault("rest", pid)
    workers = bench.stack.pids("worker")
    if len(workers) > 1:
        chosen["worker"] = workers[1]
    return chosen


def _sockets_measure(*, bench: Bench, fleet: Fleet, asgi: str) -> dict:
    """Steps: note the ASGI process's memory; open the sockets, start the fleet; sample the
    ASGI process every second; drop and reopen every socket half-way (the storm); join
    each ping's 202 with its arrivals on the sockets."""
    plan = bench.plan
    orders = min(plan.live_socket_couriers, len(fleet.order_ids))
    socket_orders = [i % orders for i in range(plan.live_sockets)]
    servers = _server_processes(bench)
    server = psutil.Process(servers["asgi"]) if "asgi" in servers else None
    rss_before = server.memory_info().rss if server else None
    storm_at = plan.live_swarm_s / 2
    swarm_spec = {"url": asgi, "origin": "http://127.0.0.1", "codes": [fleet.tracking_codes[o] for o in socket_orders],
                  "order_of": socket_orders, "seconds": plan.live_swarm_s + 15, "open_spread_s": 10,
                  "storm_at_s": storm_at + 15, "storm_spread_s": 10}  # fmt: skip
    swarm_started = time.time()
    swarm, swarm_out = _tool_start(bench=bench, kind="swarm", spec=swarm_spec)
    samples: list[tuple[float, float, float]] = []
    queued: list[tuple[float, int]] = []  # batches waiting for a worker, once a second
    stop = threading.Event()

    def sample() -> None:
        broker = broker_connect(env=bench.env)
        began = time.monotonic()
        while not stop.is_set():
            at = round(time.monotonic() - began, 1)
            queued.append((at, queue_depth(broker=broker)))
            if server is not None:
                try:
                    samples.append((at, server.memory_info().rss / 1e6, server.cpu_percent()))
                except psutil.NoSuchProcess:
                    pass
            stop.wait(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(15)  # the sockets open over their first 10 s; the fleet starts once they are open
    spec = _fleet_spec(bench=bench, fleet=fleet, seconds=plan.live_swarm_s, count=orders)
    fleet_tool, fleet_out = _tool_start(bench=bench, kind="fleet", spec=spec)
    cores = CoresSpent()
    cores.begin()
    # CPU profiles of the servers while the couriers ping (the storm included).
    profile_s = max(5.0, plan.live_swarm_s - 5)
    profiles = {role: (process_profile(pid=pid, seconds=profile_s, output=bench.workdir / f"live-{role}.raw.txt"),
                       bench.workdir / f"live-{role}.raw.txt")
                for role, pid in servers.items()}  # fmt: skip
    time.sleep(max(0.0, plan.live_swarm_s - 2))  # just before the fleet ends: an ended process is not counted
    spent = cores.finish()
    fleet_result = _tool_wait(fleet_tool, fleet_out, timeout=plan.live_swarm_s + 60)
    swarm_result = _tool_wait(swarm, swarm_out, timeout=plan.live_swarm_s + 60)
    stop.set()
    sampler.join()
    for process, _ in profiles.values():
        process.wait(timeout=profile_s + 60)

    storm_from = swarm_started + swarm_spec["storm_at_s"]  # the pings of the storm and the 15 s after it
    acks, arrivals = fleet_result["acks"], swarm_result["arrivals"]
    delays = _delays(acks=acks, arrivals=arrivals)
    peak_rss = max((s[1] for s in samples), default=0.0)
    per_socket_kb = ((peak_rss * 1e6 - rss_before) / swarm_result["peak_open"] / 1000
                     if rss_before and swarm_result["peak_open"] else None)  # fmt: skip
    return {
        "sockets": plan.live_sockets,
        "offered_pings_per_s": round(orders / plan.live_period_s),
        "peak_open": swarm_result["peak_open"],
        "reopened": swarm_result["reopened"],
        "socket_errors": swarm_result["errors"],
        "pings_per_s": round(fleet_result["pings_per_s"], 0),
        "ping_errors": fleet_result["errors"],
        "deliveries": len(delays),
        "delay_ms": _percentiles(delays),
        "delay_in_storm_ms": _percentiles(
            _delays(acks=acks, arrivals=arrivals, since=storm_from, until=storm_from + 15)
        ),
        "asgi_rss_mb_before": round(rss_before / 1e6, 1) if rss_before else None,
        "asgi_rss_mb_peak": round(peak_rss, 1),
        "asgi_kb_per_socket": round(per_socket_kb, 1) if per_socket_kb else None,
        "asgi_cpu_pct_mean": round(float(np.mean([s[2] for s in samples])), 0) if samples else None,
        "asgi_series": samples,
        "queue_series": queued,
        "queue_peak": max((depth for _, depth in queued), default=None),
        "open_series": swarm_result["open_series"],
        "swarm_client_cpu_s": round(swarm_result["client_cpu_s"], 1),
        "fleet_client_cpu_s": round(fleet_result["client_cpu_s"], 1),
        "cores": spent,
        "profiles": {role: stacks_summarize(path=path) for role, (_, path) in profiles.items()},
    }


def _delays(*, acks: list, arrivals: list, since: float = 0, until: float = float("inf")) -> list[float]:
    """Seconds from each ping's 202 to its arrival on each socket of its order."""
    acked = {(courier, recorded_ms): at for courier, recorded_ms, at in acks if since <= at < until}
    return sorted(at - acked[(o, ms)] for o, ms, at in arrivals if (o, ms) in acked)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.array(values) * 1000
    return {f"p{q}": round(float(np.percentile(array, q)), 0) for q in (50, 90, 99)}
