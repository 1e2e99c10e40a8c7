"""The read path against a bare JSON view under the same server, closed loop, same
connections: GET /orders/{id}/location with each courier reading its own order with its
token (the issue's target), and GET /track/{code}, what each consumer's phone polls: no
token, one order read and two throttles (per code and address, per address; set high enough
here not to refuse, so that they count as they do in production)."""

from __future__ import annotations

from bench.measurements.base import Bench

READS = (
    ("read-bare", "/bench/bare"),
    ("read-location", "/api/v1/orders/{order_id}/location"),
    ("read-link", "/api/v1/track/{tracking_code}"),
)


def reads_measure(bench: Bench) -> None:
    plan = bench.plan
    for name, url in READS:
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
    bare = bench.results["read-bare"]
    for name in ("read-location", "read-link"):
        if bare["requests_per_s"]:
            read = bench.results[name]
            read["share_of_bare_pct"] = round(100 * read["requests_per_s"] / bare["requests_per_s"], 1)
