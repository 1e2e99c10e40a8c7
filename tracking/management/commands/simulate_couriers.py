"""Simulated couriers driving through the real HTTP API, with a progress line and a summary."""

from __future__ import annotations

import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError

from tracking.simulator.client import ApiError, healthz_wait
from tracking.simulator.config import SimulationConfig, SimulationStats
from tracking.simulator.run import simulation_run


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Simulated couriers log in through the HTTP API, take orders, drive street-like paths across "
        "São Paulo sending batched pings (with duplicates, late and out-of-order ones) and deliver. "
        "Needs the same DATABASE_URL as the server: it creates the `simulator` staff user there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--couriers", type=positive_int, default=3, help="How many couriers drive (default 3).")
        parser.add_argument("--orders", type=int, default=6, help="Orders in all, taken in turn (default 6).")
        parser.add_argument(
            "--speed", type=positive_float, default=1.0,
            help="Speed factor over 8-12 m/s; capped under the server's plausibility limit (default 1).",
        )  # fmt: skip
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The API server.")
        parser.add_argument("--interval", type=positive_float, default=2.0, help="Seconds between batches (2).")
        parser.add_argument("--ping-every", type=positive_float, default=1.0, help="Device seconds between pings (1).")
        parser.add_argument("--duration", type=positive_float, help="Stop after this many seconds.")
        parser.add_argument("--loop", action="store_true", help="Keep creating orders until stopped.")
        parser.add_argument("--trip-km", type=positive_float, default=2.0, help="Longest trip to a consumer (2 km).")
        parser.add_argument("--radius-km", type=positive_float, default=6.0, help="City radius around the centre.")
        parser.add_argument(
            "--quirk-rate", type=float, default=0.1,
            help="Chance per batch of a duplicate, of a late ping and of out-of-order pings (0.1).",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, help="Random seed, for a repeatable run.")
        parser.add_argument("--wait", type=positive_float, default=0, help="Wait up to this long for /healthz first.")

    def handle(self, *args, **options):
        config = SimulationConfig(
            base_url=options["base_url"].rstrip("/"),
            couriers=options["couriers"],
            orders=options["orders"],
            speed=options["speed"],
            interval_s=options["interval"],
            ping_every_s=options["ping_every"],
            duration_s=options["duration"],
            loop=options["loop"],
            trip_km=options["trip_km"],
            radius_km=options["radius_km"],
            quirk_rate=options["quirk_rate"],
            seed=options["seed"],
        )
        stop = threading.Event()
        self._signals_trap(stop)
        self.stdout.write(
            f"Simulating {config.couriers} couriers, {'orders forever' if config.loop else f'{config.orders} orders'} "
            f"against {config.base_url} (Ctrl-C stops and prints the summary)"
        )
        try:
            if options["wait"]:
                healthz_wait(base_url=config.base_url, timeout=options["wait"])
            stats = simulation_run(config=config, stop=stop, progress=self._progress)
        except ApiError as exc:
            raise CommandError(str(exc)) from exc
        if self._tty:
            self.stdout.write("")
        self.stdout.write(stats.summary(config=config))

    _last_line_at = 0.0

    @property
    def _tty(self) -> bool:
        return self.stdout.isatty()

    def _progress(self, stats: SimulationStats) -> None:
        if self._tty:
            self.stdout.write(f"\r\x1b[2K{stats.progress_line()}", ending="")
            self.stdout.flush()
        elif time.monotonic() - self._last_line_at >= 10:
            self._last_line_at = time.monotonic()
            self.stdout.write(stats.progress_line())

    def _signals_trap(self, stop: threading.Event) -> None:
        """The first Ctrl-C or SIGTERM ends the run cleanly (unfinished orders are cancelled,
        the summary printed); a second Ctrl-C aborts at once."""

        def handler(signum, frame):
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
            signal.signal(signal.SIGTERM, handler)
