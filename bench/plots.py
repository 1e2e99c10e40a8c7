"""The report's figures (matplotlib, Agg: no display needed). Each one names the command
that produced it in its footer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def figure_save(fig: plt.Figure, *, path: Path, command: str) -> str:
    """Save under `path` (a report's performance/ folder); return the report's link to it."""
    fig.text(0.01, 0.005, f"produced by: {command}", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"{path.parent.name}/{path.name}"


def throughput_plot(*, data: dict, out: Path, name: str, phase: str) -> str | None:
    """Accepted pings/s (client), persisted pings/s (rows stored) and queue depth over a load."""
    series = data["series"]
    load = series["loads"].get(phase)
    if not load or not load["per_second"]:
        return None
    start, batch = load["start"], max(load["batch"], 1)
    end = start + len(load["per_second"])
    samples = [s for s in series["samples"] if start - 2 <= s["t"] <= end + data["plan"]["drain_s"]]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    accepted = np.array(load["per_second"]) * batch
    ax.plot(np.arange(len(accepted)) + 0.5, accepted, label="accepted (202) pings/s", color="tab:blue")
    if len(samples) > 1:
        t = np.array([s["t"] for s in samples]) - start
        stored = np.array([s["stored"] for s in samples], dtype=float)
        rate = np.diff(stored) / np.maximum(np.diff(t), 1e-3)
        ax.plot(t[1:], np.maximum(rate, 0), label="persisted pings/s", color="tab:green")
        queue_ax = ax.twinx()
        queue_ax.plot(t, [s["queue"] * batch for s in samples], color="tab:red", ls="--", label="queued pings")
        queue_ax.set_ylabel("pings waiting in the broker", color="tab:red")
        queue_ax.legend(loc="upper right")
    ax.axvline(len(accepted), color="#999", lw=0.8)
    ax.set_xlabel("seconds since the load started (load ends at the grey line)")
    ax.set_ylabel("pings/s")
    ax.set_title(f"{phase}: throughput and broker queue")
    ax.legend(loc="upper left")
    return figure_save(fig, path=out / name, command=data["command"])


def latency_plot(*, data: dict, out: Path) -> str | None:
    loads = {k: v for k, v in data["series"]["loads"].items() if v.get("latency_ms")}
    if not loads:
        return None
    quantiles = list(next(iter(loads.values()))["latency_ms"])
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(quantiles)
    for i, q in enumerate(quantiles):
        values = [loads[name]["latency_ms"][q] for name in loads]
        ax.bar(np.arange(len(loads)) + i * width, values, width, label=f"p{q}")
    ax.set_xticks(np.arange(len(loads)) + width * (len(quantiles) - 1) / 2, list(loads), rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("request latency (ms, log)")
    ax.set_title("Request latency percentiles per measurement")
    ax.legend()
    return figure_save(fig, path=out / "latency.png", command=data["command"])


def freshness_plot(*, data: dict, out: Path) -> str | None:
    runs = {k: v for k, v in data["results"].items() if k.startswith("fresh-") and v.get("samples_ms")}
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for run in runs.values():
        values = np.sort(np.maximum(np.array(run["samples_ms"]), 1.0))
        share = np.arange(1, len(values) + 1) / (len(values) + run["not_visible"])
        ax.plot(values, share * 100, label=f"offered {run['offered_pings_per_s']:,} pings/s")
    for target, rate in ((250, "1,000"), (1000, "5,000")):
        ax.axvline(target, color="#999", ls=":", lw=0.8)
        ax.text(target, 2, f" target p99 @ {rate}", fontsize=7, color="#555", rotation=90)
    ax.set_xscale("log")
    ax.set_xlabel("send → visible on the order's location (ms, log)")
    ax.set_ylabel("% of batches")
    ax.set_title("Freshness distribution (open loop)")
    ax.legend()
    return figure_save(fig, path=out / "freshness.png", command=data["command"])


def baseline_plot(*, data: dict, out: Path) -> str | None:
    results = data["results"]
    bars = {
        "naive (per ping, in the request)": results.get("naive", {}).get("pings_per_s"),
        "ours end to end (persisted)": results.get("e2e", {}).get("persisted_pings_per_s"),
        "ours API alone (accepted)": results.get("api", {}).get("pings_per_s"),
        "ours one worker (persisted)": results.get("worker", {}).get("pings_per_s"),
    }
    bars = {k: v for k, v in bars.items() if v}
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.barh(list(bars), list(bars.values()), color=["#999", "tab:green", "tab:blue", "tab:purple"][: len(bars)])
    for i, v in enumerate(bars.values()):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.axvline(10_000, color="tab:red", ls=":", label="end-to-end target 10,000")
    ax.set_xlabel("pings/s (batches of 50)")
    ax.set_title("Naive baseline beside ours, same run, same load generator")
    ax.legend(loc="lower right")
    return figure_save(fig, path=out / "baseline.png", command=data["command"])


def bytes_plot(*, data: dict, out: Path) -> str | None:
    result = data["results"].get("bytes")
    if not result:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    heap, index, other = result["heap_bytes_per_ping"], result["index_bytes_per_ping"], result["other_bytes_per_ping"]
    ax.barh(["per stored ping"], [heap], label=f"heap {heap:.0f} B", color="tab:blue")
    ax.barh(["per stored ping"], [index], left=[heap], label=f"indexes {index:.0f} B", color="tab:orange")
    ax.barh(["per stored ping"], [other], left=[heap + index], label=f"TOAST and maps {other:.1f} B", color="tab:gray")
    ax.axvline(200, color="tab:red", ls=":", label="target 200 B")
    ax.set_xlabel(f"bytes on disk per ping ({result['rows']:,} rows)")
    ax.set_title("Bytes per stored ping (heap + indexes + TOAST)")
    ax.legend(loc="lower right", fontsize=8)
    return figure_save(fig, path=out / "bytes.png", command=data["command"])


def memory_plot(*, data: dict, out: Path) -> str | None:
    samples = data["series"]["samples"]
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for role in ("web", "worker"):
        points = [(s["t"], s["rss_mb"][role]) for s in samples if role in s["rss_mb"]]
        if points:
            ax.plot(*zip(*points, strict=True), ".", ms=2, label=f"{role} RSS (process tree)")
    for i, (name, a, b) in enumerate(data["series"]["timeline"]):
        ax.axvspan(a, b, color=f"C{i % 10}", alpha=0.08)
        ax.text(a, ax.get_ylim()[1] * 0.98 if ax.get_ylim()[1] else 0, name, fontsize=6, va="top", rotation=90)
    ax.set_xlabel("seconds since the bench started (shaded: measurements)")
    ax.set_ylabel("MB")
    ax.set_title("Web and worker memory over the run")
    ax.legend(loc="lower right")
    return figure_save(fig, path=out / "memory.png", command=data["command"])


def reads_plot(*, data: dict, out: Path) -> str | None:
    bare, located = data["results"].get("read-bare"), data["results"].get("read-location")
    if not (bare and located):
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = ["bare JSON view", "GET /orders/{id}/location"]
    values = [bare["requests_per_s"], located["requests_per_s"]]
    if link := data["results"].get("read-link"):
        labels.append("GET /track/{code}")
        values.append(link["requests_per_s"])
    ax.barh(labels, values, color=["#999", "tab:blue", "tab:cyan"][: len(values)])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.axvline(bare["requests_per_s"] / 2, color="tab:red", ls=":", label="target: 50 % of bare")
    ax.set_xlabel("requests/s, 16 connections, same server")
    ax.set_title("Read path against a bare view")
    ax.legend(loc="lower right", fontsize=8)
    return figure_save(fig, path=out / "reads.png", command=data["command"])
