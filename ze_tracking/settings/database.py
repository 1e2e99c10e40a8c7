"""The database: DATABASE_URL, or DB_HOST and friends, with TLS, keepalives and connection
lifetimes."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from ze_tracking.settings.core import env


def _database() -> dict:
    """DATABASE_URL wins; otherwise DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD (how
    Elastic Beanstalk receives Aurora's Secrets Manager credentials)."""
    if "DATABASE_URL" in env:
        config = env.db_url("DATABASE_URL")
    elif "DB_HOST" in env:
        config = {
            "HOST": env.str("DB_HOST"),
            "PORT": env.int("DB_PORT", default=5432),
            "NAME": env.str("DB_NAME"),
            "USER": env.str("DB_USER"),
            "PASSWORD": env.str("DB_PASSWORD"),
        }
    else:
        raise ImproperlyConfigured("Set DATABASE_URL (postgis://user:pass@host:port/name) or DB_HOST and friends.")
    # TLS that checks the server: deploy/ sets verify-full and the RDS CA bundle's path.
    # https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
    for option in ("sslmode", "sslrootcert"):
        if value := env.str(f"DATABASE_{option.upper()}", default=""):
            config.setdefault("OPTIONS", {})[option] = value
    # PostGIS's backend with a health check that costs no round trip (infra/db/backend).
    config["ENGINE"] = "infra.db.backend"
    # Off unless the launcher turns it on: Django advises against persistent connections
    # for HTTP under ASGI (each request may run on another thread, and idle connections
    # pile up): https://docs.djangoproject.com/en/5.2/ref/databases/#persistent-connections
    # gunicorn's sync workers and the websocket-only uvicorn (one database thread per
    # process) keep theirs (scripts/web.sh, deploy/eb/run-process.sh).
    # Celery workers run tasks on long-lived threads and keep theirs for
    # DB_WORKER_CONN_MAX_AGE (ze_tracking/celery.py switches it on when a worker starts);
    # the health check replaces a connection that died between two tasks (a failover).
    config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
    config["CONN_HEALTH_CHECKS"] = True
    # A server that vanished (a failover, a dropped network path) fails a connection within
    # seconds instead of the kernel's two hours: a bounded connect, then TCP keepalives.
    # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-KEEPALIVES
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT_S", default=5))
    options.update({"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3})
    return config


DB_WORKER_CONN_MAX_AGE = env.int("DB_WORKER_CONN_MAX_AGE", default=600)


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
