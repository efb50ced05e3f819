#!/usr/bin/env bash
# Start the services the tests use (PostgreSQL, MariaDB, Redis) on loopback when they are down,
# with Debian's own commands, then wait until each answers. Idempotent: running services are left alone.
set -uo pipefail

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() { # name host port
  for _ in $(seq 1 60); do
    if up "$2" "$3"; then echo "services: $1 is up on $2:$3"; return 0; fi
    sleep 0.5
  done
  echo "services: $1 did not come up on $2:$3" >&2
  return 1
}

status=0

if ! up 127.0.0.1 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  else
    echo "services: PostgreSQL is down and pg_ctlcluster is not installed" >&2
  fi
fi
wait_up PostgreSQL 127.0.0.1 5432 || status=1

if ! up 127.0.0.1 3306; then
  if [ -x /usr/sbin/mariadbd ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  else
    echo "services: MariaDB is down and /usr/sbin/mariadbd is not installed" >&2
  fi
fi
wait_up MariaDB 127.0.0.1 3306 || status=1

if ! up 127.0.0.1 6379; then
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  else
    echo "services: Redis is down and redis-server is not installed" >&2
  fi
fi
wait_up Redis 127.0.0.1 6379 || status=1

# Outside CI a missing service only makes its tests skip; in CI it is a failure (the tests say so too).
if [ "$status" -ne 0 ] && [ "${CI:-}" = "true" ]; then exit 1; fi
exit 0
