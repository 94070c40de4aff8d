"""gunicorn's settings for production, each read from the environment.

``gunicorn -c gunicorn.conf.py`` serves the installed package (``app:create_app()``) from any
directory; ``scripts/build-production.sh`` puts this file beside the environment it builds.

gthread workers, two per core and one more, four threads each (``make bench`` and ``make
bench-faults``, docs/performance.md). More workers than cores: while one waits for the WAL
flush of a write, another uses the core (writes served a quarter faster than with a worker per
core). Threads: while Redis is out of reach each write waits ``CACHE_TRUST_TTL`` (0.6 s) so
that no other host serves the old value; with sync workers those waits held every worker
and reads queued behind them (median 632 ms in the drill), with four threads reads stayed at
24 ms. In normal operation the two served reads and writes alike; the settings page about a
sixth slower with threads (the GIL). A buffering reverse proxy in front (nginx, a cloud load
balancer) reads each request whole before passing it on, so slow clients never hold a thread
(deploy/nginx.conf; the README's Deploy section).
"""

import os

# The factory, so an installed copy needs no wsgi.py; an app named on the command line wins.
wsgi_app = "app:create_app()"

# Behind the reverse proxy on the same host; a container sets GUNICORN_BIND=0.0.0.0:8000.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1)))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

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
