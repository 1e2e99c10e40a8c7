#!/usr/bin/env bash
# On the deployment leader only (.ebextensions/10_database.config):
#   1. db_bootstrap.py roles   as ze_admin: PostGIS extension, the ze_app and ze_dms logins,
#                              the DMS DDL-capture artifacts;
#   2. migrate                 as ze_app (owner of the database);
#   3. db_bootstrap.py grants  as ze_admin: SELECT for ze_dms on the analytics tables.
# Each environment has its own leader; only the web environment's runs this.
set -euo pipefail
. deploy/eb/environment.sh
if [ "${ZE_PROCESS:-}" != "web" ]; then
  echo "leader-database: ZE_PROCESS=${ZE_PROCESS:-unset}, nothing to do"
  exit 0
fi
python deploy/eb/db_bootstrap.py roles
python manage.py migrate --noinput
python deploy/eb/db_bootstrap.py grants
