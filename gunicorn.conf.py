"""gunicorn's settings for production, each read from the environment (``gunicorn wsgi:app``).

gthread workers: each worker serves ``GUNICORN_THREADS`` requests at once, and a client that
sends its request slowly holds one thread for at most five seconds (gunicorn then hands the
connection back to the worker's poller), so two slow clients cannot stop a worker. In
production a buffering reverse proxy (nginx, a cloud load balancer) stands in front anyway:
it reads the whole request before passing it on. See the README's Deploy section.
"""

import os

# Behind the reverse proxy on the same host; a container sets GUNICORN_BIND=0.0.0.0:8000.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, os.cpu_count() or 1))))
worker_class = "gthread"
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

# gunicorn's control socket lives at one path per user, so a second gunicorn on the host
# (another app, a benchmark) would take it over; nothing here uses it.
control_socket_disable = True
