"""The live section of docs/PERFORMANCE.md (`make bench ONLY=live`): written between its two
markers, leaving the rest of the report as it is; a full `make bench` keeps it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

START, END = "<!-- live:start -->", "<!-- live:end -->"


def live_section_keep(*, old: str, new: str) -> str:
    """`new` with the live section of `old` appended (a full report run does not measure it)."""
    if START in old and END in old:
        return new.rstrip("\n") + "\n\n" + old[old.index(START) : old.index(END) + len(END)] + "\n"
    return new


def live_section_write(*, data: dict, report: Path, plots: Path) -> Path:
    section = "\n".join([START, *_section(data=data, plots=plots, relative_to=report.parent), END])
    text = report.read_text() if report.exists() else "# Performance\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    report.write_text(text)
    return report


def _section(*, data: dict, plots: Path, relative_to: Path) -> list[str]:
    results, plan = data["results"], data["plan"]
    m, s = results.get("live-map", {}), results.get("live-sockets", {})
    when = dt.datetime.fromtimestamp(data["started_at"], dt.UTC)
    before = ", ".join(f"{v:.2f}" for v in data["load_average_before"])
    mode = "QUICK mode (smaller fleet and shorter runs than the targets)" if data["quick"] else "normal mode"
    failures = [f"- **{k} failed**: {v}" for k, v in data["failures"].items() if k == "live"]
    heap = m.get("heap_mb") or []
    d, storm = s.get("delay_ms", {}), s.get("delay_in_storm_ms", {})
    rows = [
        ("Map: first full picture after opening /backoffice/", "≤ 2 s", f"{m.get('first_picture_s', '—')} s",
         f"{m.get('couriers', 0):,} couriers"),
        ("Map: animation frames per second while updates flow", "≥ 50", m.get("frames_per_s", "—"),
         f"over {m.get('seconds', '—')} s"),
        ("Map: main-thread tasks over 50 ms", "none", m.get("long_tasks", "—"),
         f"{m.get('long_tasks_ms', 0):.0f} ms in all, longest {m.get('longest_task_ms', 0):.0f} ms"),
        ("Map: fleet socket payload per second", "≤ 100 KB/s", f"{m.get('socket_kb_per_s', '—')} KB/s",
         f"{m.get('socket_messages_per_s', '—')} messages/s, before permessage-deflate"),
        ("Map: JS heap, first → last sample", "flat", f"{heap[0]} → {heap[-1]} MB" if heap else "—",
         f"{len(heap)} samples, 1 s apart"),
        ("Map: pings that got through (each courier every "
         f"{plan['live_period_s']:.0f} s)", "—", f"{m.get('pings_per_s', '—')}/s",
         f"offered {m.get('couriers', 0) / plan['live_period_s']:,.0f}/s; errors {m.get('ping_errors') or 'none'}; "
         f"simulator {m.get('fleet_client_cpu_s', '—')} CPU s"),
        ("Sockets: open at once (tracking links)", f"{plan['live_sockets']:,}", f"{s.get('peak_open', 0):,}",
         f"errors {s.get('socket_errors') or 'none'}; swarm {s.get('swarm_client_cpu_s', '—')} CPU s"),
        ("Sockets: ping 202 → consumer's socket, p50 / p90 / p99", "p50 < 200 ms, p99 < 1 s",
         f"{d.get('p50', '—')} / {d.get('p90', '—')} / {d.get('p99', '—')} ms",
         f"{s.get('deliveries', 0):,} deliveries; {s.get('pings_per_s', '—')} pings/s got through of "
         f"{s.get('offered_pings_per_s', '—')} offered; "
         f"batches waiting for a worker, peak {s.get('queue_peak', '—')}"),
        ("Sockets: ASGI process memory per open socket", "reported", f"{s.get('asgi_kb_per_socket', '—')} KB",
         f"RSS {s.get('asgi_rss_mb_before', '—')} → {s.get('asgi_rss_mb_peak', '—')} MB; "
         f"mean CPU {s.get('asgi_cpu_pct_mean', '—')} % of one core"),
        ("Reconnect storm: every socket dropped, reopened within 10 s", "no error, delay < 2 s",
         f"{s.get('reopened', 0):,} reopened", f"delay in the storm p50 {storm.get('p50', '—')} / "
         f"p99 {storm.get('p99', '—')} ms"),
    ]  # fmt: skip
    figure = _plot(sockets=s, map_=m, out=plots / "live.png")
    lines = [
        "## Live side: the backoffice map and the tracking-link sockets",
        "",
        f"Measured {when:%Y-%m-%d %H:%M} UTC on commit `{data.get('commit') or 'unknown'}`, {mode}, "
        f"{data['cpus']} cores, load average before {before}, by:",
        "",
        f"    {data['command']}",
        "",
        f"Fleet: {plan['live_couriers']:,} couriers each with an order in transit, each pinging every "
        f"{plan['live_period_s']:.0f} s from one process (`bench/livegen.py fleet`); the map in headless "
        f"Chromium for {plan['live_map_s']:.0f} s; {plan['live_sockets']:,} tracking-link sockets "
        f"(`bench/livegen.py swarm`) for {plan['live_swarm_s']:.0f} s, following the orders of "
        f"{plan.get('live_socket_couriers', plan['live_couriers']):,} couriers who ping meanwhile, "
        "dropped and reopened half-way. "
        "The browser, both load tools and the whole stack share the machine's cores, so every figure is a "
        "lower bound of what the server does alone.",
        "",
        *failures,
        "| figure | target | measured | notes |",
        "|---|---|---|---|",
        *[f"| {' | '.join(str(c) for c in row)} |" for row in rows],
        "",
    ]
    if figure:
        lines += [f"![Live side]({figure.relative_to(relative_to)})", ""]
    return lines + _limits(map_=m, sockets=s) + DESIGN


def _cores_line(spent: dict | None) -> str:
    if not spent:
        return "not measured"
    roles = ", ".join(f"{role} {cores:.2f}" for role, cores in spent["cores_by_role"].items() if cores >= 0.01)
    busy = f"machine {spent['busy_pct']:.0f} % busy over {spent['seconds']} s on {spent['cores']} cores"
    return f"{busy}; cores per role: {roles}"


def _limits(*, map_: dict, sockets: dict) -> list[str]:
    """Where the CPU went in each phase, and the busiest frames of each server process."""
    if not (map_.get("cores") or sockets.get("cores")):
        return []
    lines = [
        "Where the time went (`bench/profiling.py`: CPU of every process per role over the phase; py-spy CPU "
        "samples of one process per server role while the couriers ping beside the sockets):",
        "",
        f"- map phase: {_cores_line(map_.get('cores'))}",
        f"- sockets phase: {_cores_line(sockets.get('cores'))}",
    ]
    for role, frames in (sockets.get("profiles") or {}).items():
        ends = "; ".join(f"`{frame}` {pct} %" for frame, pct in frames.get("self", [])) or "no samples"
        ours = "; ".join(f"`{frame}` {pct} %" for frame, pct in frames.get("project", [])) or "none"
        lines.append(f"- {role} process: samples end in {ends}; the project's functions on the stack: {ours}")
    return lines + [""]


DESIGN = [
    "How the live side is built for this size:",
    "",
    "- **The map** (`static/tracking/backoffice.js`) draws couriers and orders on one canvas of its own over the "
    "Leaflet map: each frame is one loop over the couriers, every courier of a colour in one `Path2D`, so the cost "
    "is a few arcs per courier and no DOM element at all. Moves glide by interpolation in that loop; a courier "
    "turns grey when its last ping passes the stale limit, read at draw time (nothing is rebuilt); below zoom 11 "
    "couriers are counted per 48-pixel screen cell instead of clustered by a library. Clicks are hit-tested "
    "against the drawn positions. Leaflet's own canvas renderer with one `circleMarker` per courier, MapLibre GL "
    "and deck.gl were not measured: the first keeps a layer object and a redraw request per courier, the other "
    "two are new dependencies of several hundred KB.",
    "- **The fleet stream** (`tracking/broadcasts.py`, `tracking/consumers.py`): one message per publish "
    "(at most every `LIVE_UPDATE_INTERVAL_S`), rows of arrays of only the couriers and orders that moved "
    "(`tracking/serializers.py`: `courier_fleet_row`, `order_fleet_row`); a socket that reads a publish more than "
    "`FLEET_SOCKET_BEHIND_S` late gets the current state and skips the backlog.",
    "- **Sockets**: one uvicorn process (`scripts/web.sh`, `deploy/eb/run-process.sh`) on channels_redis's pub/sub "
    "layer (`ze_tracking/settings/cache.py`): a group message is one PUBLISH that the process hands to its sockets. "
    "Measured against the core layer on this machine on 2026-12-07 (2,000 sockets, otherwise the same run): "
    "the core layer reopened 1,599 "
    "sockets in the storm and delivered nothing in the 15 s after it; the pub/sub layer reopened 1,986 and "
    "delivered through it. The websockets' database calls share one thread per process (Channels' "
    "`database_sync_to_async`), so that process keeps one database connection: closing it after each call "
    "left 388 of 2,000 sockets open at once (1,350 handshakes timed out), keeping it opened all 2,000. "
    "The load tools reach uvicorn on its own port: the bench's nginx (1,024 worker connections) would cap the "
    "count first, and production's nginx needs its `worker_connections` sized to the sockets.",
    "",
    "What limits it on this machine, and the next step:",
    "",
    "- **The cores.** The map, both load tools and the whole stack share two cores, nearly always busy in both phases "
    "(the lines above). Every courier's ping is its own request and its own batch: the REST process spends its "
    "time in the request (token check, enqueue), the worker in the batch's five statements, so a single-ping "
    "request costs the sum of the roles' cores divided by the pings that got through. The couriers' 300 pings/s "
    "of the map phase did not fit beside the browser; the target's 2,000 couriers every 2 s (1,000 requests/s) "
    "is a fleet of web and worker instances sized from docs/performance/capacity.json (`make cost`), not one "
    "machine. The app sending its pings in batches (one request every 10 s) divides that cost.",
    "- **The socket delay.** The ASGI process used about half a core beside everything else; its samples are "
    "spread over asyncio's and asgiref's hand-offs (the lines above), the project's own code a few per cent. "
    "Grouped by the ping's 202, pings sent before the storm arrived later than those sent once the sockets had "
    "reopened (`.local/bench/runs/live-fleet.json` and `live-swarm.json` keep the raw data), which this run does "
    "not explain yet. Next: a run on a machine of its own, without the browser and the load tools; the throttle "
    "check on Redis's asyncio client instead of the process's one database thread; a second ASGI process per "
    "instance.",
    "",
]


def _plot(*, sockets: dict, map_: dict, out: Path) -> Path | None:
    series, opened, heap = sockets.get("asgi_series") or [], sockets.get("open_series") or [], map_.get("heap_mb") or []
    if not (series or heap):
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    if series:
        left.plot([p[0] for p in series], [p[1] for p in series], label="ASGI process RSS (MB)")
        left.set_xlabel("s")
        twin = left.twinx()
        twin.plot([p[0] for p in opened], [p[1] for p in opened], color="tab:orange", label="open sockets")
        twin.set_ylabel("open sockets")
        left.set_ylabel("MB")
        left.set_title("Tracking sockets: server memory and open sockets")
    if heap:
        right.plot(range(len(heap)), heap)
        right.set_xlabel("s")
        right.set_ylabel("MB")
        right.set_title("Backoffice map: JS heap while couriers move")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
