#!/usr/bin/env bash
# Starts the checkout's Redis (broker, cache, channel layer) on 127.0.0.1:PORT with its data in
# DIR, unless one answers there already. An append-only file, fsynced every second, keeps the
# queued batches (answered 202) across a Redis crash or restart: a killed Redis loses nothing
# the kernel got, a crashed machine at most the last second. https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/
set -euo pipefail
PORT=$1
DIR=$2
mkdir -p "$DIR"
if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  # One started by an older version of this script, without persistence: switch it on live.
  if [ "$(redis-cli -h 127.0.0.1 -p "$PORT" config get appendonly | tail -1)" != yes ]; then
    echo "==> Turning on Redis persistence (append-only file) on 127.0.0.1:$PORT"
    redis-cli -h 127.0.0.1 -p "$PORT" config set appendfsync everysec >/dev/null
    redis-cli -h 127.0.0.1 -p "$PORT" config set appendonly yes >/dev/null
  fi
  exit 0
fi
echo "==> Starting Redis on 127.0.0.1:$PORT"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
for _ in $(seq 100); do
  redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "Redis did not answer on 127.0.0.1:$PORT; see $DIR/redis.log" >&2
exit 1
