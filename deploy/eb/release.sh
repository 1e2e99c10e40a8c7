#!/usr/bin/env bash
# Deploy the committed HEAD to one stage's three environments:
#   deploy/eb/release.sh dev
# Needs AWS credentials with Elastic Beanstalk, S3 and CodeBuild (start and read builds of
# <app>-release) rights: a CI deploy role; plus CloudFormation read, Redshift Data API and
# DMS describe, start and stop rights and boto3 for the warehouse steps (deploy/warehouse/release.py).
# The stack (make synth; cdk deploy) creates the environments; this ships code.
set -euo pipefail

STAGE=${1:?usage: release.sh dev|prod}
APP="ze-tracking-$STAGE"
LABEL="$(git rev-parse --short=12 HEAD)-$(date -u +%Y%m%d%H%M%S)"
WORK="$(mktemp -d)"

# Two bundles of the same commit (deploy/eb/bundle.sh): web's, and the worker tiers', which
# leave out the web's load balancer configuration. One application version each.
BUCKET=$(aws elasticbeanstalk create-storage-location --query S3Bucket --output text)
for kind in web worker; do
  bash deploy/eb/bundle.sh "$kind" "$WORK/$LABEL-$kind.zip"
  aws s3 cp "$WORK/$LABEL-$kind.zip" "s3://$BUCKET/$APP/$LABEL-$kind.zip"
  aws elasticbeanstalk create-application-version --application-name "$APP" --version-label "$LABEL-$kind" \
    --source-bundle "S3Bucket=$BUCKET,S3Key=$APP/$LABEL-$kind.zip" --process
done
sleep 15  # --process validates the bundle; the CLI has no waiter for it

# The warehouse before the database: its migrations (Redshift has the new columns before
# Aurora sends them), then the DMS task stopped while Aurora migrates.
python3 deploy/warehouse/release.py "$STAGE" before

# The database first, from the new bundle, by the release task: the only holder of the
# admin login (deploy/ze_infra/release.py). Bounded wait: a release never hangs.
# build_wait NAME BUILD_ID MINUTES: until the CodeBuild build ends; non-zero unless it succeeded.
build_wait() {
  local deadline=$(( $(date +%s) + $3 * 60 )) status
  while status=$(aws codebuild batch-get-builds --ids "$2" --query 'builds[0].buildStatus' --output text) \
      && [ "$status" = IN_PROGRESS ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$1 $2 still running after $3 min" >&2; exit 1; }
    sleep 10
  done
  [ "$status" = SUCCEEDED ] || { echo "$1 $2: $status (see its CloudWatch log)" >&2; exit 1; }
}
BUILD=$(aws codebuild start-build --project-name "$APP-release" --source-type-override S3 \
  --source-location-override "$BUCKET/$APP/$LABEL-web.zip" --query build.id --output text)
build_wait "release task" "$BUILD" 30

# Then the code: web, workers and beat, against the migrated schema.
for role in web worker scheduler; do
  kind=$([ "$role" = web ] && echo web || echo worker)
  aws elasticbeanstalk update-environment --environment-name "$APP-$role" --version-label "$LABEL-$kind"
  aws elasticbeanstalk wait environment-updated --environment-names "$APP-$role"
done
# The DMS task last: its first start needs the schema the release task just migrated (and
# the grants it gave DMS's login); later releases resume it. Waits until it runs.
python3 deploy/warehouse/release.py "$STAGE" after

# Then the warehouse's models and tests (dbt, warehouse/) from this release; the nightly
# build (deploy/ze_infra/warehouse_build.py) runs from the same copy of the bundle.
aws s3 cp "s3://$BUCKET/$APP/$LABEL-web.zip" "s3://$BUCKET/$APP/warehouse/current.zip"
BUILD=$(aws codebuild start-build --project-name "$APP-warehouse-build" --query build.id --output text)
build_wait "warehouse build" "$BUILD" 60
echo "released $LABEL to $APP"
