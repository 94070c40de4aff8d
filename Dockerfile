# The production image. It builds with scripts/build-production.sh, the script CI runs and
# serves in tests/test_production_install.py, so what runs here is what CI tested; nothing
# else is installed. Try it with compose.yaml (README, "Deploy").
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN bash scripts/build-production.sh /opt/user-settings

FROM python:3.11-slim-bookworm
# Same base image, so the environment's absolute paths and its Python are the build's.
COPY --from=build /opt/user-settings /opt/user-settings
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin user-settings
ENV PATH=/opt/user-settings/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=app \
    APP_ENV=production \
    GUNICORN_BIND=0.0.0.0:8000 \
    GUNICORN_WORKER_TMP_DIR=/dev/shm
WORKDIR /opt/user-settings
USER user-settings
EXPOSE 8000
# No curl in the slim image: Python asks /healthz, with a Host the app answers to (503 while
# the database is down fails the check).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = os.environ.get('TRUSTED_HOSTS', 'localhost').split(',')[0].strip(); port = os.environ.get('GUNICORN_BIND', ':8000').rpartition(':')[2]; r.urlopen(r.Request(f'http://127.0.0.1:{port}/healthz', headers={'Host': host}), timeout=4)"]
CMD ["gunicorn", "-c", "/opt/user-settings/gunicorn.conf.py"]
