"""`python manage.py export_pings --since 2026-01-01 --until 2026-01-08 --format parquet --out DIR`

Writes one file per UTC day of [since, until) and prints each file's path and ping count on
stdout, one per line. The progress bar and errors go to stderr. Exit status: 0 done, 2 bad
arguments (nothing written), 1 the export failed (complete files stay, no partial one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracking.services.export import FORMATS, pings_count, pings_export


def moment(value: str) -> dt.datetime:
    """A date (its UTC midnight) or an ISO 8601 date-time (UTC unless it says otherwise)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Export the pings recorded in [--since, --until) into daily Parquet or CSV files."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=moment, required=True, help="first moment (included), UTC by default")
        parser.add_argument("--until", type=moment, required=True, help="end (excluded), UTC by default")
        parser.add_argument("--format", choices=FORMATS, required=True, dest="file_format")
        parser.add_argument("--out", type=Path, default=Path("."), help="folder for the files (created if missing)")

    def handle(self, *args, since, until, file_format, out, verbosity, **options):
        if since >= until:
            raise CommandError("--since must be before --until", returncode=2)
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is not a folder", returncode=2)
        try:
            total = pings_count(since=since, until=until)
            with tqdm(total=total, unit=" pings", unit_scale=True, file=sys.stderr, disable=verbosity == 0) as bar:
                files = pings_export(since=since, until=until, file_format=file_format, out_dir=out, on_rows=bar.update)
        except Exception as exc:
            raise CommandError(f"export failed: {exc}", returncode=1) from exc
        for exported in files:
            self.stdout.write(f"{exported.path}\t{exported.pings}")
