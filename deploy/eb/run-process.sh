#!/usr/bin/env bash
# The one Procfile process. Every Elastic Beanstalk environment runs the same bundle;
# ZE_PROCESS (set per environment by deploy/ze_infra/compute.py) picks the role.
set -euo pipefail

case "${ZE_PROCESS:-web}" in
  web)
    # REST, admin and pages under WSGI (gunicorn, sync workers, a process per core; no
    # access log: tracking links carry their secret in the path); only the websockets
    # (/ws/, which nginx routes to 8001: .platform/nginx/conf.d/elasticbeanstalk/) under
    # ASGI (uvicorn). A sync Django view under ASGI pays thread hand-offs on every request:
    # the ingest costs about a third more CPU per request there.
    # /metrics (staff only) adds up the workers' values from this folder.
    export PROMETHEUS_MULTIPROC_DIR=/tmp/ze-prometheus
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    trap 'kill 0' TERM INT
    # The websockets' database calls share one thread per process (Channels'
    # database_sync_to_async is thread-sensitive), so the ASGI server keeps one connection
    # as gunicorn's workers do, instead of opening one per call.
    DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-60} uvicorn ze_tracking.asgi:application --host 127.0.0.1 --port 8001 \
      --proxy-headers --no-server-header --no-access-log &
    # Sync workers serve one request at a time on one thread: persistent database
    # connections are safe there (https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections)
    # and save a connection per request.
    DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-60} gunicorn ze_tracking.wsgi:application --bind 127.0.0.1:8000 --workers "${WEB_CONCURRENCY:-2}" \
      --worker-class sync --graceful-timeout 20 &
    # One of the two exiting stops the other; Elastic Beanstalk then restarts the pair.
    wait -n
    kill 0
    ;;
  worker)
    exec celery -A ze_tracking worker -Q pings,notifications,maintenance \
      --concurrency "${CELERY_CONCURRENCY:-4}" --loglevel INFO --without-gossip --without-mingle
    ;;
  scheduler)
    # Beat alone; workers run the tasks. The Redis lock (celery-redbeat) keeps a second
    # beat, started by an immutable deploy or platform update, waiting until this one stops.
    exec celery -A ze_tracking beat --loglevel INFO
    ;;
  *)
    echo "unknown ZE_PROCESS=${ZE_PROCESS}" >&2
    exit 64
    ;;
esac
