#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for development, demos and tests.
#
#   scripts/pg.sh start DIR   initialise (if needed) and start a cluster in DIR on a
#                             free loopback port; prints its superuser connection URL
#   scripts/pg.sh url DIR     print the URL of the cluster running in DIR
#   scripts/pg.sh stop DIR    stop it (the folder stays; delete it yourself)
#
# Trust authentication on 127.0.0.1 only, fsync off: never for real data.
# When run as root, the server runs as the 'postgres' user (initdb refuses root).
set -euo pipefail

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,10p' "$0" >&2; exit 2; }

bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bindir/pg_ctl" ] || { echo "pg.sh: no PostgreSQL server binaries (set PG_BINDIR, or apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $(( 20000 + RANDOM % 30000 ))
}

data=$dir/data
case $cmd in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd); data=$dir/data
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 755 "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  port=$(free_port)
  as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" \
    start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  ;;
url)
  echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres?sslmode=disable"
  ;;
stop)
  [ -f "$data/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
  ;;
*)
  echo "pg.sh: unknown command $cmd (start, url, stop)" >&2; exit 2
  ;;
esac
