# Sourced by scripts/setup.sh with LOCAL set: the ports of the local PostgreSQL and Redis.
# ZE_PG_PORT / ZE_REDIS_PORT, else the ones this checkout's .local/env already uses (a second
# checkout set up on its own ports keeps them), else the defaults.
recorded_port() {
  [ -f "$LOCAL/env" ] || return 0  # a fresh checkout: nothing recorded yet
  sed -n "s#^export $1='[a-z]*://[^@]*@*127\.0\.0\.1:\([0-9]*\)/.*#\1#p" "$LOCAL/env" | head -1
}
PG_PORT=${ZE_PG_PORT:-$(recorded_port DATABASE_URL)}
PG_PORT=${PG_PORT:-54329}
REDIS_PORT=${ZE_REDIS_PORT:-$(recorded_port REDIS_URL)}
REDIS_PORT=${REDIS_PORT:-63799}
