#!/usr/bin/env bash
# Configuration deployments run confighooks, not hooks: the same step as a code deployment.
exec bash "$(dirname "$0")/../../hooks/prebuild/20_rds_ca.sh"
