"""The local web tier (scripts/web.sh: nginx in front of gunicorn and uvicorn, as on Elastic
Beanstalk) logs every request, and no line of its access log holds a tracking code."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import requests

from tests.support import OUTPUT, ROOT
from tests.support.builders import OrderFactory
from tests.support.database import database_url
from tests.support.processes import web_answers
from tests.support.waiting import wait_for

# nginx runs as a process of its own.
pytestmark = pytest.mark.processes


def _three_free_ports() -> int:
    """A port whose next two are free too (web.sh puts gunicorn and uvicorn there)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for p in (port, port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no three free ports in a row")


@pytest.fixture
def web_tier(transactional_db):
    port = _three_free_ports()
    access_log = ROOT / ".local" / f"nginx-{port}" / "access.log"
    access_log.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MAP_TILE_URL": "/static/no-tiles/{z}/{x}/{y}.png",
        "WHITENOISE_USE_FINDERS": "1",
    }
    with open(OUTPUT / "web-tier.log", "w") as log:
        process = subprocess.Popen(
            ["bash", "scripts/web.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base_url = f"http://127.0.0.1:{port}"

        try:
            wait_for(lambda: web_answers(f"{base_url}/healthz"), timeout=60, message="the web tier")
            yield base_url, access_log
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            shutil.rmtree(access_log.parent, ignore_errors=True)


def _tracking_link_visit(base_url: str, code: str) -> int:
    """A consumer opening the link: the page, what it then asks for (with its URL as the
    Referer, as a browser sends it), and the same link spelled otherwise. The number of
    requests."""
    page = f"{base_url}/t/{code}"
    visits = [
        requests.get(page, timeout=10),
        requests.get(f"{base_url}/api/v1/track/{code}", headers={"Referer": page}, timeout=10),
        requests.get(f"{base_url}/static/tracking/track.js", headers={"Referer": page}, timeout=10),
        requests.get(f"{base_url}/ws/track/{code}/", headers={"Referer": page}, timeout=10),
        requests.get(f"{base_url}/%74/{code}?from=sms", timeout=10),
    ]
    assert [v.status_code for v in visits[:3]] == [200, 200, 200]
    return len(visits)


def _lines_wait(path, *, count: int) -> list[str]:
    def logged() -> list[str]:
        lines = path.read_text().splitlines() if path.exists() else []
        return lines if len([line for line in lines if "/healthz" not in line]) >= count else []

    return wait_for(logged, timeout=15, message=f"{count} lines in {path.name}")


def test_a_visit_to_a_tracking_link_leaves_no_code_in_the_nginx_access_log(web_tier):
    base_url, access_log = web_tier
    code = OrderFactory().tracking_code

    lines = _lines_wait(access_log, count=_tracking_link_visit(base_url, code))

    assert not [line for line in lines if code in line]
    assert sum("/t/:code" in line for line in lines) == 2
    assert sum("/api/v1/track/:code" in line for line in lines) == 1
    assert sum("/ws/track/:code/" in line for line in lines) == 1
    assert sum("/static/tracking/track.js" in line for line in lines) == 1


# The platform's own nginx.conf and enhanced-health config (Amazon Linux 2023), paths moved
# into the test's folder: its "main" and "healthd" formats write the raw path and Referer.
PLATFORM_NGINX_CONF = r"""
user root;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"';
    log_format healthd '$msec"$uri"$status"$request_time"$upstream_response_time"$http_x_forwarded_for';
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    include conf.d/*.conf;
    map $http_upgrade $connection_upgrade {{ default "upgrade"; }}
    server {{
        listen 127.0.0.1:{port} default_server;
        root {dir}/html;
        access_log {dir}/access.log main;
        if ($time_iso8601 ~ "^(\d{{4}})-(\d{{2}})-(\d{{2}})T(\d{{2}})") {{
            set $year $1; set $month $2; set $day $3; set $hour $4;
        }}
        access_log {dir}/healthd/application.log.$year-$month-$day-$hour healthd;
        include conf.d/elasticbeanstalk/*.conf;
    }}
}}
"""


def test_the_bundles_nginx_config_keeps_tracking_codes_out_of_the_platforms_logs(web_tier, tmp_path):
    """.platform/nginx as Elastic Beanstalk lays it out (conf.d/ in the http block,
    conf.d/elasticbeanstalk/ in the server block), in front of the same two servers."""
    base_url, _ = web_tier
    wsgi_port = int(base_url.rsplit(":", 1)[1]) + 1
    port = _three_free_ports()
    (tmp_path / "healthd").mkdir()
    (tmp_path / "html").mkdir()
    for source in (ROOT / ".platform" / "nginx").rglob("*.conf"):
        target = tmp_path / source.relative_to(ROOT / ".platform" / "nginx")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text().replace("/var/log/nginx/", f"{tmp_path}/")
        target.write_text(
            text.replace("127.0.0.1:8000", f"127.0.0.1:{wsgi_port}").replace(":8001", f":{wsgi_port + 1}")
        )
    (tmp_path / "nginx.conf").write_text(PLATFORM_NGINX_CONF.format(dir=tmp_path, port=port))
    nginx = subprocess.Popen(["nginx", "-p", f"{tmp_path}/", "-c", "nginx.conf", "-g", "daemon off;"])
    try:
        wait_for(lambda: web_answers(f"http://127.0.0.1:{port}/healthz"), timeout=15, message="the platform's nginx")
        code = OrderFactory().tracking_code

        count = _tracking_link_visit(f"http://127.0.0.1:{port}", code)

        lines = _lines_wait(tmp_path / "access.log", count=count)
        (healthd,) = (tmp_path / "healthd").iterdir()
        health = _lines_wait(healthd, count=count)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
    assert not [line for line in lines + health if code in line]
    assert sum("/t/:code" in line for line in lines) == sum('"/t/:code"' in line for line in health) == 2
