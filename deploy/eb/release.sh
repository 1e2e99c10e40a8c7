#!/usr/bin/env bash
# Deploy the committed HEAD to one stage's three environments:
#   deploy/eb/release.sh dev
# Needs boto3 and AWS credentials with Elastic Beanstalk, S3 and CodeBuild (start and read
# builds of <app>-release) rights: a CI deploy role; plus CloudFormation read, Redshift Data
# API and DMS describe, start and stop rights for the warehouse steps
# (deploy/warehouse/release.py). The stack (make synth; cdk deploy) creates the
# environments; this ships code. Every step waits with a deadline and exits non-zero, with
# the reason, when it fails.
set -euo pipefail

STAGE=${1:?usage: release.sh dev|prod}
APP="ze-tracking-$STAGE"
LABEL="$(git rev-parse --short=12 HEAD)-$(date -u +%Y%m%d%H%M%S)"
WORK="$(mktemp -d)"

# Two bundles of the same commit (deploy/eb/bundle.sh): web's, and the worker tiers', which
# leave out the web's load balancer configuration. One application version each, its
# sha256 noted in the version (deploy/eb/release.py).
for kind in web worker; do
  bash deploy/eb/bundle.sh "$kind" "$WORK/$LABEL-$kind.zip"
done
python3 deploy/eb/release.py versions "$STAGE" "$LABEL" "$WORK"

# The warehouse before the database: its migrations (Redshift has the new columns before
# Aurora sends them), then the DMS task stopped while Aurora migrates.
python3 deploy/warehouse/release.py "$STAGE" before

# The release task on the web bundle, pinned to its sha256 (the only holder of the admin
# login, deploy/ze_infra/release.py); then web, workers and beat against the migrated
# schema, each waited for until it runs the version on every instance, healthy.
python3 deploy/eb/release.py deploy "$STAGE" "$LABEL"

# The DMS task last: its first start needs the schema the release task just migrated (and
# the grants it gave DMS's login); later releases resume it. Waits until it runs.
python3 deploy/warehouse/release.py "$STAGE" after

# Then the warehouse's models and tests (dbt, warehouse/) from this release; the nightly
# build (deploy/ze_infra/warehouse_build.py) runs from the same copy of the bundle.
python3 deploy/eb/release.py warehouse "$STAGE" "$LABEL"
echo "released $LABEL to $APP"
