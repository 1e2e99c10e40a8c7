"""Settings for the benchmark's own web and worker processes: the product's settings, plus
the bench-only URLs (a bare JSON view and the naive ingest baseline) so that they run under
exactly the same server, middleware and database as the product's endpoints."""

from __future__ import annotations

from ze_tracking.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# The load generator sends many more batches per courier than an app does: the per-courier
# ingest throttle (None: not applied) would answer most of them 429.
# The tracking link's throttles stay on, as in production (each poll counts in Redis), with
# room for the load generator's rate: one address, 50 codes, thousands of requests a second.
THROTTLE_RATES = {
    **THROTTLE_RATES,  # noqa: F405
    "ingest_courier": None,
    "tracking_link_code": "1000000/min",
    "tracking_link_address": "10000000/min",
}
