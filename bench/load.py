"""The load generator's contract, seen from the bench: what to send (`LoadSpec`), how to run
it (`load_run`, in its own process so that the bench's samplers never steal its event loop),
and what came back (`LoadResult`)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LoadSpec:
    """One load run. `url` may contain `{order_id}` or `{tracking_code}`, filled with the
    courier's order's.

    closed: `connections` clients each send their next request when the last one answered.
    open: requests start on a fixed schedule (`rate` pings/s, or requests/s without a body),
    whatever the answers; latency counts from the scheduled start (no coordinated omission).
    """

    name: str
    url: str
    method: str
    tokens: list[str]
    order_ids: list[str]
    tracking_codes: list[str] = field(default_factory=list)
    mode: str = "closed"
    connections: int = 16
    seconds: float = 30.0
    rate: float = 0.0
    batch: int = 50
    max_requests: int = 10_000
    # Device times: ping n of a courier is recorded at device_start + n * device_step_s; a
    # new run starts at the current time, after every device time of the runs before it as
    # long as no run sends more than 1 / device_step_s pings per second per courier.
    device_start: float = 0.0
    device_step_s: float = 0.001
    device_origin: float = 0.0
    expect_status: int = 202


@dataclass
class LoadResult:
    spec: LoadSpec
    wall_s: float
    cpu_s: float
    generated: int
    dropped: int
    # One row per request: scheduled, started, ended (epoch s), status, courier index,
    # newest device time in the body (epoch s, 0 without a body).
    requests: np.ndarray = field(repr=False)

    @property
    def ok(self) -> np.ndarray:
        return self.requests[self.requests[:, 3] == self.spec.expect_status]

    @property
    def errors(self) -> dict[int, int]:
        codes, counts = np.unique(
            self.requests[self.requests[:, 3] != self.spec.expect_status][:, 3], return_counts=True
        )
        return {int(c): int(n) for c, n in zip(codes, counts, strict=True)}

    @property
    def elapsed_s(self) -> float:
        """From the first scheduled start to the last answer."""
        if len(self.requests) == 0:
            return self.wall_s
        return float(self.requests[:, 2].max() - self.requests[:, 0].min())

    @property
    def requests_per_s(self) -> float:
        return len(self.ok) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def pings_per_s(self) -> float:
        return self.requests_per_s * max(self.spec.batch, 1)

    @property
    def client_cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    def latency_ms(self, q: float) -> float:
        ok = self.ok
        return float(np.percentile((ok[:, 2] - ok[:, 0]) * 1000, q)) if len(ok) else float("nan")

    def summary(self) -> dict:
        return {
            "requests_ok": len(self.ok),
            "errors": self.errors,
            "dropped": self.dropped,
            "elapsed_s": round(self.elapsed_s, 2),
            "requests_per_s": round(self.requests_per_s, 1),
            "pings_per_s": round(self.pings_per_s, 1),
            "latency_ms": {f"p{q}": round(self.latency_ms(q), 1) for q in (50, 90, 99)},
            "client_cpu_cores": round(self.client_cores, 2),
        }


def load_run(*, spec: LoadSpec, workdir: Path) -> LoadResult:
    """Run the load generator in a child process and read its answers back."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = workdir / f"{spec.name}.spec.json", workdir / f"{spec.name}.result.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)],
        cwd=ROOT,
        check=True,
        timeout=spec.seconds + 300,
    )
    raw = json.loads(result_path.read_text())
    return LoadResult(
        spec=spec,
        wall_s=raw["wall_s"],
        cpu_s=raw["cpu_s"],
        generated=raw["generated"],
        dropped=raw["dropped"],
        requests=np.array(raw["requests"], dtype=float).reshape(-1, 6),
    )
