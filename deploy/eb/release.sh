#!/usr/bin/env bash
# Deploy the committed HEAD to one stage's three environments:
#   deploy/eb/release.sh dev
# Needs boto3 and AWS credentials with Elastic Beanstalk, S3 and CodeBuild (start and read
# builds of <app>-release) rights: a CI deploy role; plus CloudFormation read, Redshift Data API and
# DMS start rights and boto3 for the warehouse step at the end (deploy/warehouse/release.py).
# The stack (make synth; cdk deploy) creates the environments; this ships code.
set -euo pipefail

STAGE=${1:?usage: release.sh dev|prod}
APP="ze-tracking-$STAGE"
LABEL="$(git rev-parse --short=12 HEAD)-$(date -u +%Y%m%d%H%M%S)"
BUNDLE="$(mktemp -d)/$LABEL.zip"

# The bundle is the tracked tree only: no venvs, no cdk.out.
git archive --format=zip -o "$BUNDLE" HEAD
# Upload, version, release task (pinned to the bundle's sha256), then web, worker and
# scheduler, each waited for until it runs the version everywhere and is healthy; exits
# non-zero, with the environment's events, otherwise (deploy/eb/release.py).
python3 deploy/eb/release.py "$STAGE" "$BUNDLE" "$LABEL"
# The warehouse last: its tables, views, and the DMS task's first start need the schema
# the release task just migrated (and the grants it gave DMS's login).
python3 deploy/warehouse/release.py "$STAGE"
echo "released $LABEL to $APP"
