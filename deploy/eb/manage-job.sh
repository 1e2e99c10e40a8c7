#!/usr/bin/env bash
# An operator's management command, run by the manage CodeBuild project
# (deploy/ze_infra/release.py) from the bundle the web environment runs, once its sha256
# matched: the production lock, geo libraries and RDS CA bundle as on the instances, then
# the one allow-listed command (deploy/eb/manage.py) as the app's own login.
set -euo pipefail
"$(command -v python3.11 || command -v python3)" -m venv /tmp/manage-venv
/tmp/manage-venv/bin/pip install -q --require-hashes -r requirements.txt
bash .platform/hooks/prebuild/10_geo_libraries.sh
bash deploy/eb/rds_ca.sh
/tmp/manage-venv/bin/python deploy/eb/manage.py --in-job
