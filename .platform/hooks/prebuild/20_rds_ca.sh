#!/usr/bin/env bash
# The RDS CA bundle the app's database connections verify against (checked sha256).
exec bash deploy/eb/rds_ca.sh
