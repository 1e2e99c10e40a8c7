#!/usr/bin/env bash
# The web tier, laid out as in production (.platform/nginx/conf.d/elasticbeanstalk/
# 10_ze_tracking.conf, deploy/eb/run-process.sh): nginx on $PORT sends /ws/ to the ASGI
# server (uvicorn: websockets) and everything else to the WSGI server (gunicorn: REST, a
# process per core). One process to its supervisor (honcho, the bench): when one of the three
# exits, or on SIGTERM, all three stop.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
# The two servers behind nginx take the next two ports.
WSGI_PORT=$((PORT + 1))
ASGI_PORT=$((PORT + 2))
# nginx is the one proxy in front: the client is the address it appends to X-Forwarded-For.
export DRF_NUM_PROXIES=${DRF_NUM_PROXIES:-1}
DIR="$(pwd)/.local/nginx-$PORT"
mkdir -p "$DIR"
cat > "$DIR/nginx.conf" <<NGINX
pid $DIR/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  # The production access log format: tracking routes without their code.
  include $(pwd)/.platform/nginx/conf.d/ze_access_log.conf;
  access_log $DIR/access.log ze_access buffer=64k flush=1s;
  client_max_body_size 2m;
  client_body_buffer_size 2m;
  client_body_temp_path $DIR/body;
  proxy_temp_path $DIR/proxy;
  proxy_set_header Host \$http_host;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  server {
    listen 127.0.0.1:$PORT;
    location /ws/ {
      proxy_pass http://127.0.0.1:$ASGI_PORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 300s;
    }
    location / { proxy_pass http://127.0.0.1:$WSGI_PORT; }
  }
}
NGINX
trap 'exit 143' TERM INT
trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT
DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-60} gunicorn ze_tracking.wsgi:application --bind "127.0.0.1:$WSGI_PORT" \
  --workers "${WEB_CONCURRENCY:-$(nproc)}" --worker-class sync &
# --no-proxy-headers: uvicorn trusts no X-Forwarded-For itself (the throttles read it as above).
# It serves only the websockets, whose database calls share one thread per process (Channels'
# database_sync_to_async): one connection kept, as gunicorn's, instead of one per call.
DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-60} uvicorn ze_tracking.asgi:application --host 127.0.0.1 --port "$ASGI_PORT" --no-access-log --no-proxy-headers &
nginx -p "$DIR/" -c nginx.conf -g 'daemon off;' &
wait -n
