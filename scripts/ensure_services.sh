#!/usr/bin/env bash
# Start MariaDB, Redis and PostgreSQL if they are not running (installing them on a
# machine that lacks them). Used by `make test`, `make demo` and .ci/run.
set -uo pipefail

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

up() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do up "$1" && return 0; sleep 0.5; done
  echo "ensure_services: $2 did not come up on port $1" >&2
  return 1
}

install_pkgs() {
  command -v apt-get >/dev/null || { echo "ensure_services: cannot install $* (no apt-get)" >&2; return 1; }
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if ! up 3306; then
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || install_pkgs mariadb-server
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port 3306 MariaDB || exit 1
fi

if ! up 6379; then
  command -v redis-server >/dev/null || install_pkgs redis-server
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis || exit 1
fi

if ! up 5432; then
  [ -d /etc/postgresql ] || install_pkgs postgresql
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_port 5432 PostgreSQL || exit 1
fi
echo "services: MariaDB :3306, Redis :6379, PostgreSQL :5432 are up"
