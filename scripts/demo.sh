#!/usr/bin/env bash
# The demo (`make demo`): the whole local pipeline on this machine, with state
# under .cache/demo/:
#
#   1. a throwaway PostgreSQL (scripts/pg.sh) with sample tenant databases
#      (scripts/sampledata) and an empty warehouse database;
#   2. every tenant read into the lake (tenantlake read --all) and loaded into
#      the PostgreSQL warehouse (tenantlake load --latest);
#   3. source rows changed (sampledata --mutate), every tenant read and loaded again;
#   4. one tenant replayed to its first snapshot by timestamp (tenantlake load --at);
#   5. per tenant: the live snapshot and its validation results, read back from
#      the warehouse, and an example query to paste into psql.
#
# The cluster is stopped at the end; KEEP=1 make demo leaves it running for
# psql (stop it with: scripts/pg.sh stop .cache/demo/pg).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/.cache/demo"
bin="$root/bin/tenantlake"
keep="${KEEP:-0}"
replay_tenant="${REPLAY_TENANT:-acme}"
go build -o "$bin" ./cmd/tenantlake

step() { printf '\n== %s\n' "$*"; }

# Start from scratch: stop a cluster a previous demo left running.
if [[ -d "$state/pg" ]]; then scripts/pg.sh stop "$state/pg"; fi
rm -rf "$state"
mkdir -p "$state"
finish() {
  if [[ "$keep" == 1 ]]; then
    echo
    echo "The PostgreSQL cluster is still running (KEEP=1). Stop it with: scripts/pg.sh stop $state/pg"
  else
    scripts/pg.sh stop "$state/pg"
  fi
}
trap finish EXIT

step "throwaway PostgreSQL in $state/pg"
admin="$(scripts/pg.sh start "$state/pg")"
warehouse="${admin/\/postgres\?//warehouse?}"
psql -X -q -v ON_ERROR_STOP=1 "$admin" -c 'CREATE DATABASE warehouse'
echo "source cluster: $admin"
echo "warehouse:      $warehouse"

export TENANTLAKE_LAKE="file://$state/lake"
export TENANTLAKE_REGISTRY="$state/tenants.yaml"
export TENANTLAKE_TARGET="$warehouse"

step "sample tenants (scripts/sampledata)"
go run ./scripts/sampledata --admin "$admin" --tenants 3 --seed 1 --registry "$TENANTLAKE_REGISTRY"
mapfile -t tenants < <("$bin" tenants --json | jq -r '.[].tenant_id')
[[ ${#tenants[@]} -gt 0 ]] || { echo "demo: the registry lists no tenants" >&2; exit 1; }
[[ " ${tenants[*]} " == *" $replay_tenant "* ]] || replay_tenant="${tenants[0]}"

load_all() {
  for t in "${tenants[@]}"; do
    "$bin" load --tenant "$t" --latest
    echo
  done
}

step "read every tenant into the lake (tenantlake read --all)"
"$bin" read --all
step "load every tenant into the warehouse (tenantlake load --latest)"
load_all

# The time of the replay tenant's first snapshot, as RFC 3339.
first_time="$("$bin" snapshots --tenant "$replay_tenant" --json | jq -r 'min_by(.snapshot_id).time')"
first_id="$("$bin" snapshots --tenant "$replay_tenant" --json | jq -r 'min_by(.snapshot_id).snapshot_id')"

step "change source rows (scripts/sampledata --mutate)"
go run ./scripts/sampledata --admin "$admin" --tenants 3 --seed 1 --mutate
step "read every tenant again"
"$bin" read --all
step "load every tenant again"
load_all

step "replay $replay_tenant to its first snapshot by time: tenantlake load --tenant $replay_tenant --at $first_time"
"$bin" load --tenant "$replay_tenant" --at "$first_time"

step "check what is live"
for t in "${tenants[@]}"; do
  live="$(psql -X -A -t -v ON_ERROR_STOP=1 "$warehouse" -c "SELECT snapshot_id FROM tenantlake.live WHERE tenant = '$t'")"
  want="$("$bin" snapshots --tenant "$t" --json | jq -r 'max_by(.snapshot_id).snapshot_id')"
  [[ "$t" == "$replay_tenant" ]] && want="$first_id"
  if [[ "$live" != "$want" ]]; then
    echo "demo: tenant $t: live snapshot is '$live', expected $want" >&2
    exit 1
  fi
  echo "$t: live snapshot $live, as expected"
done

step "per tenant: the live snapshot and its validation results (from the warehouse)"
psql -X -v ON_ERROR_STOP=1 "$warehouse" <<'SQL'
SELECT l.tenant, l.snapshot_id AS live_snapshot, l.reason, ld.outcome,
       (SELECT count(*) FROM jsonb_array_elements(ld.record->'tables')) AS tables,
       (SELECT sum((t->>'target_rows')::bigint) FROM jsonb_array_elements(ld.record->'tables') t) AS rows,
       (SELECT count(*) FILTER (WHERE (c->>'ok')::boolean) || ' of ' || count(*) || ' passed'
          FROM jsonb_array_elements(ld.record->'tables') t, jsonb_array_elements(t->'checks') c) AS checks
FROM tenantlake.live l JOIN tenantlake.loads ld ON ld.load_id = l.load_id
ORDER BY l.tenant;
SELECT tenant, snapshot_id, reason, outcome, started_at::timestamp(0) AS started
FROM tenantlake.loads ORDER BY started_at;
SQL

query="SELECT o.tenant_id, o.status, count(DISTINCT o.id) AS orders, sum(i.quantity * i.unit_price) AS revenue
FROM all_tenants.orders o JOIN all_tenants.order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id
GROUP BY 1, 2 ORDER BY 1, 2;"
step "an example query across tenants"
echo "psql '$warehouse' -c \"$query\""
psql -X -v ON_ERROR_STOP=1 "$warehouse" -c "$query"

echo
echo "Demo complete: ${#tenants[@]} tenants read twice and loaded twice; $replay_tenant replayed to $first_id."
if [[ "$keep" != 1 ]]; then
  echo "Stopping the cluster (run KEEP=1 make demo to keep it for psql)."
fi
