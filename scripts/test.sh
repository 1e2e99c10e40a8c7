#!/usr/bin/env bash
# Runs the test suite against real PostGIS, Redis, Celery workers and an SQS/SNS emulator;
# arguments go to pytest (`-m "not processes"` for the tests that start no process,
# `--lf` for those that failed last time).
# Tests use their own database (pytest-django's test_ prefix) and Redis db 9.
set -euo pipefail
cd "$(dirname "$0")/.."
source .local/env
export REDIS_URL="${REDIS_URL%/*}/9"
export CELERY_BROKER_URL="$REDIS_URL"
export CHANNELS_PREFIX=ze-test
# Checkouts set up before .local/env named the hosts: the local ones.
export DJANGO_ALLOWED_HOSTS="${DJANGO_ALLOWED_HOSTS:-localhost,127.0.0.1}"
# Prometheus multiprocess mode, as in `make run`: the test process's /metrics also shows
# what the worker subprocess recorded. A fresh folder per run (values are cumulative).
export PROMETHEUS_MULTIPROC_DIR="$(pwd)/.local/prometheus-test"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p test-output
pytest "$@"
