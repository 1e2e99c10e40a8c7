"""Which of a courier's GPS fixes are real: one implausible fix is one flagged fix.

A phone sometimes reports a position it never was at: a jump of kilometres for one fix, or
(0, 0) when the receiver has no fix. Such a fix is stored (for analysis) but flagged in
`suspect_reason`, so it never moves a last location nor sends "arriving". The rule has to hold
wherever the glitch sits: the courier's first fix ever, the first fix after an offline gap, in
a batch of late pings, or in a batch that arrives before older ones.

The rule, applied to the batch together with the courier's stored fixes around it in device
time, reaching back and ahead at most PLAUSIBILITY_HISTORY_S (one query per batch, or per
group of batches):

1. A fix on a null coordinate (exactly 0 latitude or longitude) is `null_island`.
2. Two fixes agree when the implied speed between them, after an allowance for both
   accuracies (each capped at PLAUSIBILITY_MAX_ACCURACY_M), is at most MAX_SPEED_MPS. Fixes
   more than PLAUSIBILITY_GAP_S apart never contradict each other: after an offline gap the
   courier may reappear anywhere. They still agree when the implied speed is at most
   PLAUSIBILITY_GAP_SPEED_MPS, an average sustained over the whole gap: the courier
   reappears where it could have driven to.
3. The trusted fixes are the largest set that can be read as one trajectory, in device time:
   each trusted fix agrees with the trusted fix before it, skipping at most
   PLAUSIBILITY_MAX_SKIP suspect fixes in between. The trajectory may jump (a contradiction
   between two trusted neighbours) only between two runs of at least PLAUSIBILITY_RUN
   mutually agreeing fixes: a run that long replaces a contradicting reference, while one
   or two fixes that contradict their neighbours are the glitch. On a tie the trajectory
   that agrees with its history across more gaps wins (a fix that agrees with the fixes
   before or after an offline gap beats one that agrees with nothing), then the one with
   the earlier fixes: a lone newcomer that contradicts a lone trusted fix waits for
   confirmation. Everything else is `implied_speed`.
4. A trusted fix is confirmed when it agrees with the trusted fix before or after it
   (across a gap too) or reports an accuracy of at most PLAUSIBILITY_GOOD_ACCURACY_M. Only
   a confirmed fix sends "arriving" (`ingest.arriving_order_ids`): a lone fix is trusted
   only until contradicted, and a notification cannot be withdrawn.

The verdict depends on the set of fixes only, not on the order the batches arrive in, so a
later batch can overturn an earlier one: stored fixes around the batch whose verdict changed
are re-flagged in one statement (only when something changed). The last-location upsert then
replaces a last location whose fix has become suspect (see `last_location.py`), so a glitch
that was the courier's first or newest fix never stays on the map once real fixes arrive.

Limits: the first fix a courier ever sends has nothing to be judged against and is trusted
until contradicted (it sends "arriving" only once confirmed); PLAUSIBILITY_RUN glitches that
agree with each other read as a real move; after a gap, a glitch close enough to agree with
the history too ties with the real fix, and the earlier of them wins until more fixes come;
a fix alone inside a gap (no other fix within PLAUSIBILITY_GAP_S either side) agrees and
disagrees with nothing and is trusted, though unconfirmed; "arriving" is decided on the
batch's own pings, so a stored lone fix that a late ping confirms sends none itself; two
batches of one courier judged at the same moment do not see each other's fixes (the next
batch around that time settles them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from infra.db.queries import binary_execute
from tracking.geo import haversine_m
from tracking.rules import tracking_rules

NULL_ISLAND = "null_island"
IMPLIED_SPEED = "implied_speed"

# Stored fixes around each stretch of each courier's pings (stretches split at offline gaps,
# so a batch holding a days-old ping and a fresh one reads two small windows, not days of
# pings). Each side reaches up to the history, past an offline gap, so the first fix after
# it is judged by the fixes before it (rule 2). The (courier_id, recorded_at) index serves
# both halves; LIMIT bounds each.
CONTEXT_SQL = """
SELECT DISTINCT w.c, p.event_id, p.recorded_at, p.lat, p.lon, p.accuracy_m, p.speed_mps, p.heading_deg,
       p.suspect_reason
FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[]) AS w(c, lo, hi)
CROSS JOIN LATERAL (
    (SELECT event_id, recorded_at, lat, lon, accuracy_m, speed_mps, heading_deg, suspect_reason
     FROM tracking_ping
     WHERE courier_id = w.c AND recorded_at BETWEEN w.lo - %s AND w.hi
     ORDER BY recorded_at DESC LIMIT %s)
    UNION ALL
    (SELECT event_id, recorded_at, lat, lon, accuracy_m, speed_mps, heading_deg, suspect_reason
     FROM tracking_ping
     WHERE courier_id = w.c AND recorded_at > w.hi AND recorded_at <= w.hi + %s
     ORDER BY recorded_at LIMIT %s)
) AS p
"""

REFLAG_SQL = """
UPDATE tracking_ping AS p SET suspect_reason = u.reason
FROM unnest(%s::uuid[], %s::uuid[], %s::timestamptz[], %s::text[])
     AS u(c, e, r, reason)
WHERE p.courier_id = u.c AND p.event_id = u.e AND p.recorded_at = u.r
"""


@dataclass
class Fix:
    """One position in device time: a ping of the batch, a stored one, or both (a resent ping)."""

    recorded_at: dt.datetime
    lat: float
    lon: float
    accuracy_m: float | None
    key: tuple[uuid.UUID, dt.datetime]
    speed_mps: float | None = None
    heading_deg: float | None = None
    stored_reason: str | None = None
    stored: bool = False
    pings: tuple[Any, ...] = ()
    confirmed: bool = False


def fix_is_null(*, lat: float, lon: float) -> bool:
    """A receiver without a fix reports zeros; a real fix exactly on the equator or the
    prime meridian is far less likely than that bug."""
    return lat == 0.0 or lon == 0.0


def fixes_judge(*, fixes: list[Fix]) -> tuple[list[bool], list[bool]]:
    """Which fixes (sorted by `recorded_at`, none null) are trusted, by rule 3 of the module
    docstring, and which of those are confirmed, by rule 4. Dynamic programming over (last
    trusted fix, length of its run capped at RUN, whether its run started with a jump and so
    must reach RUN); the score is the number of trusted fixes, then the number of agreements
    across a gap, then the smaller sum of their positions (earlier fixes win a tie)."""
    rules = tracking_rules()
    max_speed, gap_s = rules.max_speed_mps, rules.plausibility_gap_s
    gap_speed = rules.plausibility_gap_speed_mps
    run, max_skip = rules.plausibility_run, rules.plausibility_max_skip
    max_acc, good_acc = rules.plausibility_max_accuracy_m, rules.plausibility_good_accuracy_m
    n = len(fixes)
    if n == 0:
        return [], []
    allowance = [min(f.accuracy_m or 0.0, max_acc) for f in fixes]

    def relation(i: int, j: int) -> str:
        seconds = (fixes[j].recorded_at - fixes[i].recorded_at).total_seconds()
        metres = haversine_m(fixes[i].lat, fixes[i].lon, fixes[j].lat, fixes[j].lon) - allowance[i] - allowance[j]
        if seconds > gap_s:
            return "across_gap" if metres <= gap_speed * seconds else "expired"
        return "agree" if metres <= max_speed * max(seconds, 1.0) else "contradict"

    def confirmed_along(path: list[int]) -> list[bool]:
        confirmed = [f.accuracy_m is not None and f.accuracy_m <= good_acc for f in fixes]
        for i, j in pairwise(path):
            if relation(i, j) in ("agree", "across_gap"):
                confirmed[i] = confirmed[j] = True
        return confirmed

    # The usual batch: every fix agrees with the one before it, so all are trusted.
    if all(relation(i - 1, i) != "contradict" for i in range(1, n)):
        return [True] * n, confirmed_along(list(range(n)))

    # best[j][(r, must)] = (score, back-pointer state)
    Score = tuple[int, int, int]
    best: list[dict[tuple[int, bool], tuple[Score, tuple[int, int, bool] | None]]] = []
    for j in range(n):
        states: dict[tuple[int, bool], tuple[Score, tuple[int, int, bool] | None]] = {(1, False): ((1, 0, -j), None)}
        for i in range(max(0, j - max_skip - 1), j):
            link = relation(i, j)
            for (r, must), (score, _) in best[i].items():
                if link in ("expired", "across_gap"):
                    target = (1, False)
                elif link == "agree":
                    target = (min(r + 1, run), must)
                elif r >= run:
                    target = (1, True)
                else:
                    continue
                candidate = (score[0] + 1, score[1] + (link == "across_gap"), score[2] - j)
                if target not in states or candidate > states[target][0]:
                    states[target] = (candidate, (i, r, must))
        best.append(states)

    end = max(
        ((score, (j, r, must)) for j in range(n) for (r, must), (score, _) in best[j].items() if not must or r >= run),
        key=lambda item: item[0],
    )[1]
    path: list[int] = []
    state: tuple[int, int, bool] | None = end
    while state is not None:
        j, r, must = state
        path.append(j)
        state = best[j][(r, must)][1]
    path.reverse()
    trusted = [False] * n
    for j in path:
        trusted[j] = True
    confirmed = confirmed_along(path)
    return trusted, [t and c for t, c in zip(trusted, confirmed, strict=True)]


def pings_judge(*, pings: list[Any]) -> list[tuple[uuid.UUID, Fix]]:
    """Set `suspect_reason` and `confirmed` on the pings (sorted by `recorded_at`; of one courier or several,
    each judged on its own). Steps: flag null fixes; load each courier's stored fixes around
    its pings (one query for all); judge each courier's pings and stored fixes together;
    re-flag stored fixes whose verdict changed (one statement for all, only when one did).

    Returns, per courier, the stored fix the last location must now stand on, when the pings
    demoted a trusted stored fix (possibly the current last location) and the newest trusted
    fix is a stored one outside them: the caller carries it through the batch again, as a
    resent ping (stored once: storage ignores a ping it already holds)."""
    rules = tracking_rules()
    candidates: dict[uuid.UUID, list[Any]] = {}
    for ping in pings:
        ping.suspect_reason = NULL_ISLAND if fix_is_null(lat=ping.lat, lon=ping.lon) else None
        ping.confirmed = False
        if not ping.suspect_reason:
            candidates.setdefault(ping.courier_id, []).append(ping)
    if not candidates:
        return []

    gap = dt.timedelta(seconds=rules.plausibility_gap_s)
    windows: list[tuple[uuid.UUID, dt.datetime, dt.datetime]] = []
    for courier_id, courier_pings in candidates.items():
        lo, hi = courier_pings[0].recorded_at, courier_pings[0].recorded_at
        for ping in courier_pings[1:]:
            if ping.recorded_at - hi > gap:
                windows.append((courier_id, lo, hi))
                lo = ping.recorded_at
            hi = ping.recorded_at
        windows.append((courier_id, lo, hi))
    history, k = dt.timedelta(seconds=rules.plausibility_history_s), rules.plausibility_context_pings
    # The windows (courier, from, to); the history and the bound of each half, twice.
    context = [[w[0] for w in windows], [w[1] for w in windows], [w[2] for w in windows], history, k, history, k]
    stored: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
    for row in binary_execute(CONTEXT_SQL, context, binary_rows=True).fetchall():
        stored.setdefault(row[0], []).append(row[1:])

    changed: list[tuple[uuid.UUID, uuid.UUID, dt.datetime, str | None]] = []
    resent: list[tuple[uuid.UUID, Fix]] = []
    for courier_id, courier_pings in candidates.items():
        courier_changed, reference = _courier_judge(pings=courier_pings, stored=stored.get(courier_id, []))
        changed += [(courier_id, *c) for c in courier_changed]
        if reference is not None:
            resent.append((courier_id, reference))
    if changed:
        # In key order, so two transactions re-flagging the same rows lock them in the same
        # order.
        changed.sort(key=lambda c: (str(c[0]), c[2], str(c[1])))
        # (courier, event id, recorded_at, reason) as four arrays.
        binary_execute(REFLAG_SQL, [list(column) for column in zip(*changed, strict=True)])
    return resent


def _courier_judge(*, pings: list[Any], stored: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], Fix | None]:
    """One courier's candidate pings judged with its stored fixes around them: sets their
    `suspect_reason` and `confirmed`; returns the stored fixes whose verdict changed (event id, recorded_at,
    reason) and the stored fix to carry through as a resent ping, if any."""
    fixes: dict[tuple[uuid.UUID, dt.datetime], Fix] = {}
    for event_id, recorded_at, lat, lon, accuracy_m, speed_mps, heading_deg, reason in stored:
        if reason == NULL_ISLAND:
            continue
        key = (event_id, recorded_at)
        fixes[key] = Fix(recorded_at, lat, lon, accuracy_m, key, speed_mps, heading_deg, reason, stored=True)
    for ping in pings:
        key = (ping.event_id, ping.recorded_at)
        known = fixes.get(key)
        if known is None:
            fixes[key] = Fix(ping.recorded_at, ping.lat, ping.lon, ping.accuracy_m, key, pings=(ping,))
        else:  # a resent ping: one fix, judged once
            known.pings += (ping,)
    ordered = sorted(fixes.values(), key=lambda f: (f.recorded_at, str(f.key[0])))

    changed: list[tuple[uuid.UUID, dt.datetime, str | None]] = []
    verdicts, confirmations = fixes_judge(fixes=ordered)
    for fix, trusted, confirmed in zip(ordered, verdicts, confirmations, strict=True):
        reason = None if trusted else IMPLIED_SPEED
        fix.confirmed = confirmed
        for ping in fix.pings:
            ping.suspect_reason = reason
            ping.confirmed = confirmed
        if fix.stored and fix.stored_reason != reason:
            changed.append((*fix.key, reason))
    demoted = any(reason is not None for *_, reason in changed)
    newest = next((f for f, trusted in zip(reversed(ordered), reversed(verdicts), strict=True) if trusted), None)
    if demoted and newest is not None and not newest.pings:
        return changed, newest
    return changed, None
