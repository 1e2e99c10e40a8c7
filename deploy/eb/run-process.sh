#!/usr/bin/env bash
# The one Procfile process. Every Elastic Beanstalk environment runs the same bundle;
# ZE_PROCESS (set per environment by deploy/ze_infra/compute.py) picks the role.
set -euo pipefail

case "${ZE_PROCESS:-web}" in
  web)
    # nginx (port 80) proxies HTTP and the /ws/ upgrades to uvicorn on 8000.
    exec uvicorn ze_tracking.asgi:application --host 127.0.0.1 --port 8000 \
      --workers "${WEB_CONCURRENCY:-2}" --proxy-headers --no-server-header
    ;;
  worker)
    exec celery -A ze_tracking worker -Q pings,notifications,maintenance \
      --concurrency "${CELERY_CONCURRENCY:-4}" --loglevel INFO --without-gossip --without-mingle
    ;;
  scheduler)
    # Beat alone, on the one instance of the scheduler environment; workers run the tasks.
    exec celery -A ze_tracking beat --loglevel INFO --schedule /tmp/celerybeat-schedule
    ;;
  *)
    echo "unknown ZE_PROCESS=${ZE_PROCESS}" >&2
    exit 64
    ;;
esac
