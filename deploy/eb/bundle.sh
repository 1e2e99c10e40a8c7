#!/usr/bin/env bash
# The source bundle of one environment role, from the committed HEAD (the tracked tree
# only: no venvs, no cdk.out):
#   deploy/eb/bundle.sh web|worker|scheduler OUT.zip
# The web bundle is the whole tree but the courier simulator (a local tool that makes its
# own staff user); the worker tiers' also leave out the web's load balancer configuration,
# since they have no load balancer (.ebextensions/40_web_load_balancer.config).
set -euo pipefail

ROLE=${1:?usage: bundle.sh web|worker|scheduler OUT.zip}
OUT=${2:?usage: bundle.sh web|worker|scheduler OUT.zip}
WEB_ONLY=.ebextensions/40_web_load_balancer.config
LOCAL_ONLY=(":(exclude)tracking/simulator" ":(exclude)tracking/management/commands/simulate_couriers.py")

case "$ROLE" in
  web) git archive --format=zip -o "$OUT" HEAD -- . "${LOCAL_ONLY[@]}" ;;
  worker|scheduler) git archive --format=zip -o "$OUT" HEAD -- . "${LOCAL_ONLY[@]}" ":(exclude)$WEB_ONLY" ;;
  *) echo "unknown role: $ROLE" >&2; exit 64 ;;
esac
