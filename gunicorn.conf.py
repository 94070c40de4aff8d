"""gunicorn's settings for production, each read from the environment.

``gunicorn -c gunicorn.conf.py`` serves the installed package (``app:create_app()``) from any
directory; ``scripts/build-production.sh`` puts this file beside the environment it builds.

Sync workers, two per core and one more (``make bench``, docs/performance.md): a request
spends its time in Python or waiting on one round trip, and while one worker waits for the
WAL flush of a write another uses the core. Against one worker per core this served writes
a quarter faster and reads alike; gthread workers were slower on every scenario, their
threads taking turns on the GIL. Sync workers need a buffering reverse proxy in front (nginx,
a cloud load balancer): it reads each request whole before passing it on, so a slow client
never holds a worker (deploy/nginx.conf; the README's Deploy section). Where requests wait
longer (a database far away), raise ``WEB_CONCURRENCY``, or use ``GUNICORN_WORKER_CLASS=gthread``
with ``GUNICORN_THREADS``.
"""

import os

# The factory, so an installed copy needs no wsgi.py; an app named on the command line wins.
wsgi_app = "app:create_app()"

# Behind the reverse proxy on the same host; a container sets GUNICORN_BIND=0.0.0.0:8000.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1)))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))

# A request that runs longer than this is killed; every database and Redis wait is bounded
# far below it (DATABASE_TIMEOUT, CACHE_SOCKET_TIMEOUT).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# Whose X-Forwarded-* gunicorn believes (for wsgi.url_scheme): the proxies the app trusts
# with TRUSTED_PROXIES, none when there are none.
_proxies = int(os.environ.get("TRUSTED_PROXIES", "0"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1" if _proxies > 0 else "")

# "-" is standard output; an empty value turns the access log off.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# The combined format, the time taken, and the X-Request-ID the app answers with, which its
# own log lines and problem documents carry too: one id finds every line of a request.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms '
    "request_id=%({x-request-id}o)s"
)

# Workers touch a heartbeat file every second; on a container's overlay file system that
# write can stall a worker long enough to be killed, so the Dockerfile points it at tmpfs.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None

# gunicorn's control socket lives at one path per user, so a second gunicorn on the host
# (another app, a benchmark) would take it over; nothing here uses it.
control_socket_disable = True
