#!/usr/bin/env bash
# Deploy the committed HEAD to one stage's three environments:
#   deploy/eb/release.sh dev
# Needs AWS credentials with Elastic Beanstalk and S3 rights (a CI deploy role), plus
# CloudFormation read, Redshift Data API and DMS start rights and boto3 for the warehouse
# step at the end (deploy/warehouse/release.py).
# The stack (make synth; cdk deploy) creates the environments; this ships code.
set -euo pipefail

STAGE=${1:?usage: release.sh dev|prod}
APP="ze-tracking-$STAGE"
LABEL="$(git rev-parse --short=12 HEAD)-$(date -u +%Y%m%d%H%M%S)"
BUNDLE="$(mktemp -d)/$LABEL.zip"

# The bundle is the tracked tree only: no venvs, no cdk.out.
git archive --format=zip -o "$BUNDLE" HEAD
BUCKET=$(aws elasticbeanstalk create-storage-location --query S3Bucket --output text)
aws s3 cp "$BUNDLE" "s3://$BUCKET/$APP/$LABEL.zip"
aws elasticbeanstalk create-application-version --application-name "$APP" --version-label "$LABEL" \
  --source-bundle "S3Bucket=$BUCKET,S3Key=$APP/$LABEL.zip" --process
sleep 15  # --process validates the bundle; the CLI has no waiter for it

# Web first: its leader migrates. Workers and beat follow once the schema is in place.
for role in web worker scheduler; do
  aws elasticbeanstalk update-environment --environment-name "$APP-$role" --version-label "$LABEL"
  aws elasticbeanstalk wait environment-updated --environment-names "$APP-$role"
done
# The warehouse last: its tables, views, and the DMS task's first start need the schema
# the web leader just migrated (and the grants it gave DMS's login).
python3 deploy/warehouse/release.py "$STAGE"
echo "released $LABEL to $APP"
