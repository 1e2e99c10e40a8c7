"""The chaos table: printed, and written into docs/RELIABILITY.md's "Chaos results"
section (docs/RELIABILITY_CHAOS.md when that page does not exist yet)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from bench.chaos.scenarios import Outcome

DOCS = Path(__file__).resolve().parents[2] / "docs"


def table_render(*, outcomes: list[Outcome]) -> str:
    lines = [
        "| scenario | sent | accepted | stored | dead-lettered | lost | duplicated | worker resumed | caught up "
        "| result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for o in outcomes:
        resumed, caught_up = (("n/a" if s is None else f"{s:.1f} s") for s in (o.resumed_s, o.caught_up_s))
        result = "not run" if o.not_run else "passed" if o.passed else "FAILED"
        lines.append(
            f"| {o.title} | {o.sent:,} | {o.accepted:,} | {o.stored:,} | {o.dead_lettered:,} | {o.lost:,} "
            f"| {o.duplicated:,} | {resumed} | {caught_up} | {result} |"
        )
    return "\n".join(lines)


def details_render(*, outcomes: list[Outcome]) -> str:
    out = []
    for o in outcomes:
        if o.not_run:
            out.append(f"- **{o.title}**: not run: {o.not_run}.")
            continue
        out.append(f"- **{o.title}**: " + ("passed." if o.passed else "FAILED: " + "; ".join(o.failures) + "."))
        out += [f"  - {note}" for note in o.notes]
    return "\n".join(out)


def section_render(*, title: str, outcomes: list[Outcome], command: str, commit: str, setup: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{title}

`{command}` on commit `{commit}`, {when}. {setup}

Each row names its broker (SQS or Redis) at the end of the scenario.
"Accepted" counts pings answered 202 and not listed as rejected; "stored" counts rows in
`tracking_ping` for the scenario's couriers; "dead-lettered" counts accepted pings found in
`tracking_pingdeadletter` or in a batch of `tracking_pingbatchdeadletter` (kept for an
operator to replay); "lost" is accepted and neither stored nor dead-lettered when the
scenario ended (up to 90 s after the repair and after the load). "Worker resumed" runs from
the repair (worker restarted, server back, lock released) until the worker stores pings
again; "caught up", until every ping accepted before the repair is stored. A scenario fails
when a ping is lost or stored twice, when the worker has not resumed within 30 s or caught
up within 90 s of the repair, when a transient fault dead-letters an accepted ping, on a 5xx
other than 503, a 503 without Retry-After, a stored ping that was never accepted, an order
whose last location is not its newest accepted ping, or a process of the stack that exited
on its own.

{table_render(outcomes=outcomes)}

{details_render(outcomes=outcomes)}
"""


def report_write(*, title: str, section: str) -> Path:
    """Replace the section `title` in docs/RELIABILITY.md (or docs/RELIABILITY_CHAOS.md,
    while the former does not exist)."""
    page = DOCS / "RELIABILITY.md"
    if not page.exists():
        page = DOCS / "RELIABILITY_CHAOS.md"
    text = (
        page.read_text()
        if page.exists()
        else "# Reliability: chaos results\n\nWritten by `make chaos` and `make soak` (bench/chaos/).\n"
    )
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    page.write_text(text)
    return page
