#!/usr/bin/env bash
# Runs the whole service in the foreground: web (ASGI: REST, admin, websockets), Celery
# worker and beat, and (unless ZE_SIMULATOR=0) a few simulated couriers. Ctrl-C or SIGTERM
# stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source .local/env
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
PORT=${PORT:-8000}
export PORT
python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
cat <<TXT

  Zé tracking is starting on http://127.0.0.1:$PORT
    API docs      http://127.0.0.1:$PORT/api/docs/
    Admin         http://127.0.0.1:$PORT/admin/
    Health        http://127.0.0.1:$PORT/readyz
  Create a staff user in another terminal with:
    source .local/env && python manage.py createsuperuser

TXT
exec honcho -f Procfile.dev start
