#!/usr/bin/env bash
# A BigQuery emulator for `make demo TARGET=bigquery`.
#
#   scripts/bigquery-demo-target.sh start DIR   start the emulator (building it
#        once with scripts/bigquery-emulator.sh) on free loopback ports, in the
#        background, data in memory; prints the tenantlake target URL:
#        bigquery://tenantlake-demo?endpoint=http://127.0.0.1:PORT&mode=ctas&stream_format=json
#   scripts/bigquery-demo-target.sh stop DIR    stop it
#
# The emulator has no copy jobs, hence mode=ctas; its Parquet import corrupts
# dates, times and decimals, hence stream_format=json (parts of a local lake
# are streamed as newline-delimited JSON). Loads from a gs:// lake need
# STORAGE_EMULATOR_HOST set to a fake GCS server before start.
set -euo pipefail

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,13p' "$0" >&2; exit 2; }
project=tenantlake-demo

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case $cmd in
start)
  bin=$("$(dirname "$0")/bigquery-emulator.sh")
  mkdir -p "$dir"
  port=$(free_port); grpc=$(free_port)
  "$bin" --project="$project" --host=127.0.0.1 --port="$port" --grpc-port="$grpc" --log-level=error \
    >"$dir/bigquery-emulator.log" 2>&1 &
  echo $! >"$dir/bigquery-emulator.pid"
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$port/bigquery/v2/projects/$project/datasets" >/dev/null 2>&1; then
      echo "bigquery://$project?endpoint=http://127.0.0.1:$port&mode=ctas&stream_format=json"
      exit 0
    fi
    kill -0 "$(cat "$dir/bigquery-emulator.pid")" 2>/dev/null || { cat "$dir/bigquery-emulator.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "bigquery-demo-target.sh: the emulator did not answer on port $port" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/bigquery-emulator.pid" ]; then
    kill "$(cat "$dir/bigquery-emulator.pid")" 2>/dev/null || true
    rm -f "$dir/bigquery-emulator.pid"
  fi
  ;;
*)
  sed -n '2,13p' "$0" >&2; exit 2
  ;;
esac
