"""gunicorn settings for `make serve`; every value can be overridden from the environment.

Run as: gunicorn portal.wsgi:application --config portal/gunicorn.conf.py
"""

import os


def _cores() -> int:
    # The cores this process may use (a container's CPU set), not the host's count.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = os.environ.get("BIND", "127.0.0.1:8000")
# Sync workers: a login is CPU-bound (the password hash) with short database
# waits in between, so a few more workers than cores keep every core busy.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * _cores() + 1))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak can never take a server down.
max_requests = 2000
max_requests_jitter = 200
# Import the app once in the master: a settings error (no SECRET_KEY) stops the
# start with one clear message instead of every worker failing in a loop.
preload_app = True
# gunicorn itself never trusts X-Forwarded-* headers; Django decides, from
# SECURE_PROXY_SSL_HEADER and TRUSTED_PROXY_COUNT, what a proxy may tell it.
forwarded_allow_ips = ""
# The access log goes to stdout unless GUNICORN_ACCESS_LOG is set to "" (benchmarks).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
