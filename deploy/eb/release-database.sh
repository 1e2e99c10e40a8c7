#!/usr/bin/env bash
# The database step of a release, run by the release CodeBuild project
# (deploy/ze_infra/release.py) from the new source bundle, before any environment runs it:
#   1. the bundle's production lock (hashes required), the geo libraries and the RDS CA
#      bundle, installed and checked exactly as on the instances;
#   2. db_bootstrap.py roles   as ze_admin: PostGIS extension, the ze_app and ze_dms logins,
#                              the DMS DDL-capture artifacts;
#   3. migrate                 as ze_app (owner of the database);
#   4. db_bootstrap.py grants  as ze_admin: SELECT for ze_dms on the analytics tables.
# The admin and DMS secrets are readable by this project's role only, never by the
# instances (deploy/tests/test_iam.py).
set -euo pipefail
"$(command -v python3.11 || command -v python3)" -m venv /tmp/release-venv
/tmp/release-venv/bin/pip install -q --require-hashes -r requirements.txt
bash .platform/hooks/prebuild/10_geo_libraries.sh
bash deploy/eb/rds_ca.sh
. /tmp/release-venv/bin/activate
python deploy/eb/db_bootstrap.py roles
python manage.py migrate --noinput
python deploy/eb/db_bootstrap.py grants
