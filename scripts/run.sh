#!/usr/bin/env bash
# Runs the whole service in the foreground, laid out as in production: nginx on $PORT sends
# /ws/ to the ASGI server (uvicorn) and everything else to the WSGI server (gunicorn, a
# process per core); Celery worker and beat; and (unless ZE_SIMULATOR=0) a few simulated
# couriers. Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source .local/env
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
PORT=${PORT:-8000}
export PORT
# honcho gives each process its own PORT (PORT+100, +200…); the simulator needs the web's.
export ZE_API_URL="http://127.0.0.1:$PORT"
# Every process (uvicorn, Celery children) writes its metrics here; /metrics adds them up.
export PROMETHEUS_MULTIPROC_DIR="$(pwd)/.local/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
cat <<TXT

  Zé tracking is starting on http://127.0.0.1:$PORT
    API docs      http://127.0.0.1:$PORT/api/docs/
    Admin         http://127.0.0.1:$PORT/admin/
    Health        http://127.0.0.1:$PORT/readyz
    Metrics       http://127.0.0.1:$PORT/metrics (staff login, or Bearer \$METRICS_TOKEN)
  Create a staff user in another terminal with:
    source .local/env && python manage.py createsuperuser

TXT
# honcho stops everything when one process exits, so "off" means not starting it at all.
if [ "${ZE_SIMULATOR:-1}" = "0" ]; then
  exec honcho -f Procfile.dev start web worker beat
fi
exec honcho -f Procfile.dev start
