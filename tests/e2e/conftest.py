"""The browser and the live server: the real ASGI app under uvicorn, and Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import OUTPUT, ROOT
from tests.support.browser import chromium_launch, csp_violations_watch
from tests.support.database import database_url
from tests.support.network import free_port
from tests.support.processes import web_answers
from tests.support.waiting import wait_for


@pytest.fixture(scope="session")
def asgi_server(celery_worker_process):
    """The real ASGI app (HTTP and websockets) under uvicorn, on the test database."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHITENOISE_USE_FINDERS": "1",
        "MAP_TILE_URL": "/static/no-tiles/{z}/{x}/{y}.png",  # no network here
    }
    log = open(OUTPUT / "asgi-server.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        # As Procfile.dev: nothing stands in front, so no X-Forwarded-For is trusted.
        [sys.executable, "-m", "uvicorn", "ze_tracking.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-proxy-headers"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    wait_for(lambda: web_answers(f"{base_url}/healthz", timeout=1), timeout=30, message="the ASGI server")
    yield base_url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while it runs; the test's own
    # ORM calls are still synchronous and run between browser steps, so Django's async guard
    # is lifted for the module.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = chromium_launch(playwright)
        yield chromium
        chromium.close()
    # The loop ends with the module, so later tests get Django's guard back.
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, asgi_server, worker, request):
    """A browser tab on the ASGI server; a test module may set VIEWPORT = (width, height)."""
    width, height = getattr(request.module, "VIEWPORT", (1280, 800))
    context = browser.new_context(base_url=asgi_server, viewport={"width": width, "height": height})
    yield context.new_page()
    context.close()


@pytest.fixture
def csp_violations(page):
    """What the page's policy blocked; a test asserts it stays empty."""
    return csp_violations_watch(page)
