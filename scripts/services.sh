#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer for the tests: reuse running ones, start stopped ones.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  echo "services: using TEST_DATABASE_URL"
elif ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]] && [[ $(id -u) == 0 ]]; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "services: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  elif command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    bin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    dir=$(mktemp -d /tmp/pg-test.XXXXXX)
    echo "services: starting a throwaway PostgreSQL in $dir"
    # PostgreSQL refuses to run as root.
    as_pg=(); if [[ $(id -u) == 0 ]]; then chown postgres "$dir"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" "$bin/initdb" --no-sync -A trust -U postgres -D "$dir/data" >/dev/null
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -o "-p $PG_PORT -k $dir -c listen_addresses=$PG_HOST" \
      -l "$dir/log" -w start
    "$bin/createdb" -h "$PG_HOST" -p "$PG_PORT" -U postgres test
  else
    echo "services: PostgreSQL is not running on $PG_HOST:$PG_PORT and is not installed." >&2
    echo "          Install it (apt-get install postgresql) or set TEST_DATABASE_URL." >&2
    exit 1
  fi
  for _ in $(seq 50); do pg_up && break; sleep 0.2; done
  pg_up || { echo "services: PostgreSQL did not come up" >&2; exit 1; }
fi
if ! [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" postgres \
    | grep -q 1 || createdb -h "$PG_HOST" -p "$PG_PORT" -U postgres test
fi

if [[ -n "${TEST_REDIS_URL:-}" ]]; then
  echo "services: using TEST_REDIS_URL"
elif ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis on port $REDIS_PORT"
    mkdir -p /tmp/redis-test
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /tmp/redis-test --logfile /tmp/redis-test/redis.log
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "services: Redis did not come up" >&2; exit 1; }
  else
    echo "services: Redis is not running on 127.0.0.1:$REDIS_PORT and is not installed." >&2
    echo "          Install it (apt-get install redis-server) or set TEST_REDIS_URL." >&2
    exit 1
  fi
fi
echo "services: PostgreSQL and Redis are up"
