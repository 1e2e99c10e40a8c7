#!/usr/bin/env bash
# The one Procfile process. Every Elastic Beanstalk environment runs the same bundle;
# ZE_PROCESS (set per environment by deploy/ze_infra/compute.py) picks the role.
set -euo pipefail

case "${ZE_PROCESS:-web}" in
  web)
    # nginx (port 80) proxies HTTP and the /ws/ upgrades to uvicorn on 8000.
    # /metrics (staff only) adds up the uvicorn workers' values from this folder.
    export PROMETHEUS_MULTIPROC_DIR=/tmp/ze-prometheus
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec uvicorn ze_tracking.asgi:application --host 127.0.0.1 --port 8000 \
      --workers "${WEB_CONCURRENCY:-2}" --proxy-headers --no-server-header
    ;;
  worker)
    exec celery -A ze_tracking worker -Q pings,notifications,maintenance \
      --concurrency "${CELERY_CONCURRENCY:-4}" --loglevel INFO --without-gossip --without-mingle
    ;;
  scheduler)
    # Beat alone; workers run the tasks. The Redis lock (celery-redbeat) keeps a second
    # beat, started by an immutable deploy or platform update, waiting until this one stops.
    exec celery -A ze_tracking beat --scheduler redbeat.RedBeatScheduler --loglevel INFO
    ;;
  *)
    echo "unknown ZE_PROCESS=${ZE_PROCESS}" >&2
    exit 64
    ;;
esac
