"""The test harness, by concern; tests import from here, conftest.py files register fixtures.

- `builders`: factories and payloads (a ping, a courier's action, a recorded batch).
- `api`: API clients and the login.
- `waiting`: wait for a condition with a deadline.
- `database`: the test database seen from outside Django (URL, connections, lock waiters).
- `network`: free ports, and a port that never answers.
- `processes`: real processes (Celery workers, beat, redis-server, a Python snippet).
- `aws`: moto's server as SNS and SQS.
- `browser`: Debian's Chromium through Playwright.

A new fixture that starts a process or server goes into `PROCESS_FIXTURES` (tests/conftest.py),
which marks the tests using it `processes`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
