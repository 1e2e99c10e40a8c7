#!/usr/bin/env bash
# The analysts' warehouse (warehouse/, a dbt project), run against PostgreSQL here.
#
#   scripts/warehouse.sh install   dbt's own venv (.venv-warehouse), from its hashed lock
#   scripts/warehouse.sh build [DBT_ARGS]
#                                  make warehouse: a local warehouse database fed by logical
#                                  replication from the service's database, `dbt build` on
#                                  it (with DBT_ARGS, e.g. --full-refresh), and the docs site
#                                  (catalogue, lineage) written to .local/warehouse/docs/
#   scripts/warehouse.sh dbt ARGS  dbt itself, with the project's profile and paths
#
# Connection settings come from WAREHOUSE_* (warehouse/profiles.yml); `build` derives them
# from .local/env (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=.venv-warehouse

install() {
  local stamp=$VENV/.installed
  if [ ! -f $stamp ] || [ requirements/warehouse.txt -nt $stamp ] || [ requirements/pip.txt -nt $stamp ]; then
    echo "==> Installing dbt into $VENV"
    [ -x $VENV/bin/python ] || python3 -m venv $VENV
    $VENV/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/pip.txt
    $VENV/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/warehouse.txt
    touch $stamp
  fi
}

dbt() {
  install
  mkdir -p "$ROOT/.local/warehouse"
  (cd warehouse && DBT_PROFILES_DIR=. DBT_TARGET_PATH="${DBT_TARGET_PATH:-$ROOT/.local/warehouse/target}" \
    DBT_LOG_PATH="$ROOT/.local/warehouse/logs" DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    "$ROOT/$VENV/bin/dbt" "$@")
}

build() {
  source .local/env
  local service="${DATABASE_URL/#postgis:/postgresql:}"
  local dbname="${WAREHOUSE_DBNAME:-ze_warehouse}"
  python manage.py migrate --noinput -v0
  # Replicates, then gives the profile's WAREHOUSE_* (the service's server, the warehouse database).
  eval "$(python warehouse/replicate.py "$service" "$dbname")"
  export WAREHOUSE_TARGET=local
  dbt build "$@"
  DBT_TARGET_PATH="$ROOT/.local/warehouse/docs" dbt docs generate
  echo "==> docs site: .local/warehouse/docs/index.html (serve it: scripts/warehouse.sh dbt docs serve --target-path $ROOT/.local/warehouse/docs)"
}

case "${1:-build}" in
  install) install ;;
  build) shift || true; build "$@" ;;
  dbt) shift; dbt "$@" ;;
  *) echo "usage: $0 install|build|dbt ARGS" >&2; exit 2 ;;
esac
