#!/usr/bin/env bash
# nginx serves /static from staticfiles/ on every web instance.
set -euo pipefail
. deploy/eb/environment.sh
if [ "${ZE_PROCESS:-web}" = "web" ]; then
  python manage.py collectstatic --noinput --verbosity 0
fi
