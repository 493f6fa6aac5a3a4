#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on a loopback port, for the test suites and local replicas:
#   scripts/postgres.sh start DIR PORT   creates the cluster in DIR (when missing), starts it,
#                                        prints its server URL (postgres://postgres@127.0.0.1:PORT)
#   scripts/postgres.sh stop DIR         stops it at once (the folder stays; remove it yourself)
# Debian's PostgreSQL (scripts/bootstrap.sh installs it). initdb refuses to run as root: as root,
# the cluster runs as the `postgres` user, and DIR is given to it. Trust authentication on
# 127.0.0.1 only: never a production setup.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed (run scripts/bootstrap.sh)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
  start)
    dir=$2 port=$3
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir" -A trust -U postgres >"$dir.initdb.log" 2>&1 ||
        { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$2" -m immediate stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
