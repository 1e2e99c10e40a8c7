"""The read path: GET /orders/{id}/location against a bare JSON view under the same server,
closed loop, same connections; each courier reads its own order with its token."""

from __future__ import annotations

from bench.measurements.base import Bench


def reads_measure(bench: Bench) -> None:
    plan = bench.plan
    for name, url in (("read-bare", "/bench/bare"), ("read-location", "/api/v1/orders/{order_id}/location")):
        with bench.phase(name, f"GET {url}, {plan.connections} connections, {plan.reads_s:.0f} s"):
            bench.stack.start()
            spec = bench.ingest_spec(
                name=name,
                url=url,
                seconds=plan.reads_s,
                method="GET",
                batch=0,
                expect_status=200,
                max_requests=int(plan.max_reads_per_s * plan.reads_s),
            )
            bench.results[name] = bench.load(spec).summary()
    bare, located = bench.results["read-bare"], bench.results["read-location"]
    if bare["requests_per_s"]:
        located["share_of_bare_pct"] = round(100 * located["requests_per_s"] / bare["requests_per_s"], 1)
