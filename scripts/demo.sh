#!/usr/bin/env bash
# The demo (`make demo`): the whole local pipeline on this machine, with state
# under .cache/demo/:
#
#   1. a throwaway PostgreSQL (scripts/pg.sh) with sample tenant databases
#      (scripts/sampledata) and an empty warehouse database;
#   2. one event-driven cycle, `tenantlake run --once`: Schedule, read
#      requests on an in-process Pub/Sub, Read, snapshot events, Load into the
#      target, validation, live;
#   3. source rows changed (sampledata --mutate), a second `run --once`;
#   4. one tenant replayed to its first snapshot by timestamp, with a request
#      to the Replay function of a running `tenantlake run`;
#   5. per tenant: the live snapshot and its validation results (from the load
#      ledger), an example query across tenants, and (postgres) what each load
#      changed in the replayed tenant's tables, from its change tables.
#
# TARGET=postgres (the default) loads into a warehouse database in the same
# throwaway cluster; TARGET=bigquery loads into the BigQuery emulator
# (scripts/bigquery-demo-target.sh). The services are stopped at the end;
# KEEP=1 leaves them running (stop PostgreSQL with scripts/pg.sh stop
# .cache/demo/pg, the emulator with scripts/bigquery-demo-target.sh stop .cache/demo/bq).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/.cache/demo"
bin="$root/bin/tenantlake"
keep="${KEEP:-0}"
target="${TARGET:-postgres}"
case "$target" in
postgres | bigquery) ;;
*) echo "demo: TARGET=$target: want postgres or bigquery" >&2; exit 2 ;;
esac
replay_tenant="${REPLAY_TENANT:-acme}"
go build -o "$bin" ./cmd/tenantlake

step() { printf '\n== %s\n' "$*"; }

# Start from scratch: stop a cluster a previous demo left running.
if [[ -d "$state/pg" ]]; then scripts/pg.sh stop "$state/pg"; fi
rm -rf "$state"
mkdir -p "$state"
if [[ -d "$state/bq" ]]; then scripts/bigquery-demo-target.sh stop "$state/bq"; fi
finish() {
  if [[ "$keep" == 1 ]]; then
    echo
    echo "Still running (KEEP=1). Stop with: scripts/pg.sh stop $state/pg"
    [[ "$target" == bigquery ]] && echo "  and: scripts/bigquery-demo-target.sh stop $state/bq"
  else
    scripts/pg.sh stop "$state/pg"
    if [[ "$target" == bigquery ]]; then scripts/bigquery-demo-target.sh stop "$state/bq"; fi
  fi
  return 0
}
trap finish EXIT

step "throwaway PostgreSQL in $state/pg"
admin="$(scripts/pg.sh start "$state/pg")"
warehouse="${admin/\/postgres\?//warehouse?}"
echo "source cluster: $admin"
if [[ "$target" == bigquery ]]; then
  step "BigQuery emulator (scripts/bigquery-demo-target.sh)"
  TENANTLAKE_TARGET="$(scripts/bigquery-demo-target.sh start "$state/bq")"
else
  psql -X -q -v ON_ERROR_STOP=1 "$admin" -c 'CREATE DATABASE warehouse'
  # changes=true: each load also appends what it changed to <table>_changes.
  TENANTLAKE_TARGET="$warehouse&changes=true"
fi
echo "target: $TENANTLAKE_TARGET"

# Only tenantlake read creates a lake; tenants, below, runs before the first read.
mkdir -p "$state/lake"
export TENANTLAKE_LAKE="file://$state/lake"
export TENANTLAKE_REGISTRY="$state/tenants.yaml"
export TENANTLAKE_TARGET

step "sample tenants (scripts/sampledata)"
go run ./scripts/sampledata --admin "$admin" --tenants 3 --seed 1 --registry "$TENANTLAKE_REGISTRY"
mapfile -t tenants < <("$bin" tenants --json | jq -r '.[].tenant_id')
[[ ${#tenants[@]} -gt 0 ]] || { echo "demo: the registry lists no tenants" >&2; exit 1; }
[[ " ${tenants[*]} " == *" $replay_tenant "* ]] || replay_tenant="${tenants[0]}"

run_once() {
  # One event-driven cycle: Schedule publishes a read request per tenant on
  # the in-process Pub/Sub, the dispatcher pushes them to Read, each read
  # publishes snapshot.committed, Load loads it into the target.
  "$bin" run --once --listen 127.0.0.1:0 --target "$TENANTLAKE_TARGET" 2>>"$state/run.log"
}

step "one scheduled cycle: tenantlake run --once (logs in $state/run.log)"
run_once

# The time of the replay tenant's first snapshot, as RFC 3339.
first_time="$("$bin" snapshots --tenant "$replay_tenant" --json | jq -r 'min_by(.snapshot_id).time')"
first_id="$("$bin" snapshots --tenant "$replay_tenant" --json | jq -r 'min_by(.snapshot_id).snapshot_id')"

step "change source rows (scripts/sampledata --mutate)"
go run ./scripts/sampledata --admin "$admin" --tenants 3 --seed 1 --mutate
step "a second cycle: tenantlake run --once"
run_once

step "replay $replay_tenant as of $first_time over HTTP (the Replay function of tenantlake run)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" run --listen "127.0.0.1:$port" --schedule "0 0 1 1 *" --target "$TENANTLAKE_TARGET" 2>>"$state/run.log" &
run_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/Snapshots?tenant=$replay_tenant" >/dev/null 2>&1 && break; sleep 0.1; done
body="{\"tenant\":\"$replay_tenant\",\"at\":\"$first_time\"}"
echo "curl -X POST http://127.0.0.1:$port/Replay -H 'Content-Type: application/json' -d '$body'"
curl -fsS -X POST "http://127.0.0.1:$port/Replay" -H 'Content-Type: application/json' -d "$body" | jq -c '{snapshot_id, targets, tables: (.tables | length), request_id}'
for _ in $(seq 300); do
  [[ "$(cat "$state/lake/tenant=$replay_tenant/_loads/target=$target/"*.json | jq -rs 'map(select(.reason == "replay")) | last | .outcome // empty')" == loaded ]] && break
  sleep 0.1
done
kill "$run_pid"; wait "$run_pid" 2>/dev/null || true

# The newest record of tenant $1's load ledger in the lake (the target's name
# is the writer's default: postgres or bigquery).
last_load() {
  cat "$state/lake/tenant=$1/_loads/target=$target/"*.json | jq -s 'sort_by(.finished_at) | last'
}

step "check what is live"
for t in "${tenants[@]}"; do
  live="$(last_load "$t" | jq -r .live)"
  want="$("$bin" snapshots --tenant "$t" --json | jq -r 'max_by(.snapshot_id).snapshot_id')"
  [[ "$t" == "$replay_tenant" ]] && want="$first_id"
  if [[ "$live" != "$want" ]]; then
    echo "demo: tenant $t: live snapshot is '$live', expected $want" >&2
    exit 1
  fi
  echo "$t: live snapshot $live, as expected"
done

step "per tenant: the live snapshot and its validation results (from the load ledger)"
printf '%-10s %-22s %-8s %-8s %7s %8s  %s\n' TENANT LIVE REASON OUTCOME TABLES ROWS CHECKS
for t in "${tenants[@]}"; do
  last_load "$t" | jq -r '[.tenant, .live, .reason, .outcome, (.tables | length), ([.tables[].target_rows] | add),
      "\([.tables[].checks[] | select(.ok)] | length) of \([.tables[].checks[]] | length) passed"] | @tsv' |
    while IFS=$'\t' read -r a b c d e f g; do printf '%-10s %-22s %-8s %-8s %7s %8s  %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"; done
done

if [[ "$target" == bigquery ]]; then
  query='SELECT o.tenant_id, o.status, COUNT(DISTINCT o.id) AS orders, SUM(i.quantity * i.unit_price) AS revenue
FROM all_tenants.orders o JOIN all_tenants.order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
GROUP BY 1, 2 ORDER BY 1, 2'
  endpoint="$(sed -n 's/.*[?&]endpoint=\([^&]*\).*/\1/p' <<<"$TENANTLAKE_TARGET")"
  project="$(sed -n 's|^bigquery://\([^?/]*\).*|\1|p' <<<"$TENANTLAKE_TARGET")"
  body="$(jq -n --arg q "$query" '{query: $q, useLegacySql: false}')"
  step "an example query across tenants (BigQuery emulator's REST API)"
  echo "curl -s -X POST '$endpoint/bigquery/v2/projects/$project/queries' -H 'Content-Type: application/json' -d '$body'"
  curl -fsS -X POST "$endpoint/bigquery/v2/projects/$project/queries" -H 'Content-Type: application/json' -d "$body" |
    jq -r '.rows[] | [.f[].v] | @tsv'
else
  step "the warehouse's own ledger table (tenantlake.loads)"
  psql -X -v ON_ERROR_STOP=1 "$warehouse" -c "SELECT tenant, snapshot_id, reason, outcome, live, started_at::timestamp(0) AS started FROM tenantlake.loads ORDER BY started_at"
  query="SELECT o.tenant_id, o.status, count(DISTINCT o.id) AS orders, sum(i.quantity * i.unit_price) AS revenue
FROM all_tenants.orders o JOIN all_tenants.order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
GROUP BY 1, 2 ORDER BY 1, 2;"
  step "an example query across tenants: paste into a shell (KEEP=1 keeps the cluster running)"
  echo "psql '$warehouse' -c \"$query\""
  psql -X -v ON_ERROR_STOP=1 "$warehouse" -c "$query"
  step "what each load changed in $replay_tenant's tables, from its change tables (<table>_changes)"
  psql -X -qAt -v ON_ERROR_STOP=1 "$warehouse" -c "SELECT table_name FROM tenantlake.tables WHERE schema_name = 'tenant_$replay_tenant' AND kind = 'changes' ORDER BY 1" |
    while read -r ct; do
      psql -X -v ON_ERROR_STOP=1 "$warehouse" -c "SELECT '$ct' AS change_table, previous_snapshot_id AS from_snapshot, snapshot_id AS to_snapshot, operation, count(*) AS rows FROM tenant_$replay_tenant.$ct GROUP BY load_id, 2, 3, 4 ORDER BY load_id, 4"
    done
fi

echo
echo "Demo complete: ${#tenants[@]} tenants through two event-driven cycles into $target; $replay_tenant replayed to $first_id."
