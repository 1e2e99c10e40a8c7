"""Debian's Chromium driven by Playwright (never a downloaded browser), and what a test
does in a page."""

from __future__ import annotations

# Without the networking flags Chromium tries to reach the internet and stalls.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def chromium_launch(playwright):
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)


def csp_violations_watch(page) -> list[str]:
    """Chromium reports each thing the Content-Security-Policy blocked on the console."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def log_in(page, username: str, password: str) -> None:
    """Staff's login form, landing on the live map."""
    page.goto("/accounts/login/?next=/backoffice/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/backoffice/")
