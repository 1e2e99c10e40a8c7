#!/usr/bin/env bash
# Installs and starts what the service needs, idempotently: Debian packages, the Python
# virtualenv, and PostgreSQL+PostGIS and Redis on project-local ports unless DATABASE_URL /
# REDIS_URL point elsewhere. Writes .local/env, which scripts/run.sh and scripts/test.sh source.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

source scripts/ports.sh
APT_PACKAGES="postgresql-15 postgresql-15-postgis-3 gdal-bin libgdal-dev libgeos-dev libproj-dev binutils redis-server chromium python3-venv jq nginx-light"

sudo_maybe() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "==> Installing Debian packages:$missing"
  sudo_maybe apt-get update -qq
  sudo_maybe env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements-stamp
if [ ! -f $stamp ] || [ -n "$(find requirements -newer $stamp -name '*.txt')" ]; then
  echo "==> Installing Python requirements"
  # The lock pins every package with its sha256 (make lock); anything else is refused.
  .venv/bin/pip install -q --require-hashes -r requirements/local.txt
  touch $stamp
fi

if [ -z "${DATABASE_URL:-}" ]; then
  PGBIN=/usr/lib/postgresql/15/bin
  PGDATA="$LOCAL/pg"
  # PostgreSQL runs as `postgres`, which may not be allowed into this checkout's folders
  # (a clone under a private home, say): then its data lives in postgres's own home.
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$LOCAL"; then
    PGDATA="/var/lib/postgresql/ze-tracking-$(echo "$ROOT" | md5sum | cut -c1-8)"
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "==> Creating a PostgreSQL cluster in $PGDATA"
    mkdir -p "$PGDATA"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDATA"; fi
    as_pg="$( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres --' )"
    (cd / && $as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null)
  fi
  # wal_level=logical: change data capture reads a logical decoding slot (DMS's test_decoding
  # slot in production, the same plugin in tests/tracking/test_replication.py).
  pg_options="-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1 -c max_connections=200 \
    -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
  as_pg="$( [ "$(id -u)" = 0 ] && echo 'runuser -u postgres --' )"
  if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "==> Starting PostgreSQL on 127.0.0.1:$PG_PORT"
    (cd / && $as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -o "$pg_options" start >/dev/null)
  elif [ "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc 'SHOW wal_level')" != logical ]; then
    # A cluster started by an older version of this script: wal_level needs a restart.
    running_in=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc 'SHOW data_directory')
    if [ "$running_in" != "$PGDATA" ]; then
      echo "PostgreSQL on port $PG_PORT (data in $running_in) is not this checkout's and has" \
        "wal_level != logical; start it with -c wal_level=logical or choose another ZE_PG_PORT." >&2
      exit 1
    fi
    echo "==> Restarting PostgreSQL on 127.0.0.1:$PG_PORT with wal_level=logical"
    (cd / && $as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -m fast -o "$pg_options" restart >/dev/null)
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='ze_tracking'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE ze_tracking"
  DATABASE_URL="postgis://postgres@127.0.0.1:$PG_PORT/ze_tracking"
fi

if [ -z "${REDIS_URL:-}" ]; then
  bash scripts/redis.sh "$REDIS_PORT" "$LOCAL"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi

# A secret generated once per checkout for local runs; production sets its own.
[ -f "$LOCAL/secret_key" ] || python3 -c "import secrets; print(secrets.token_urlsafe(50))" > "$LOCAL/secret_key"

cat > "$LOCAL/env" <<ENV
export DATABASE_URL='$DATABASE_URL'
export REDIS_URL='$REDIS_URL'
export CELERY_BROKER_URL='${CELERY_BROKER_URL:-$REDIS_URL}'
export DJANGO_SECRET_KEY='$(cat "$LOCAL/secret_key")'
export DJANGO_SECURE_SSL_REDIRECT=0
export DJANGO_SECURE_COOKIES=0
export DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1
export PATH='$ROOT/.venv/bin':\$PATH
ENV
echo "==> Ready: database ${DATABASE_URL%%@*}@…, redis $REDIS_URL"
