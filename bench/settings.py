"""Settings for the benchmark's own web and worker processes: the product's settings, plus
the bench-only URLs (a bare JSON view and the naive ingest baseline) so that they run under
exactly the same server, middleware and database as the product's endpoints."""

from __future__ import annotations

from ze_tracking.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
