#!/usr/bin/env bash
# The demo (`make demo`): sample tenants in a throwaway PostgreSQL, then the
# pipeline on them, all on this machine, with state under .cache/demo/.
#
# PLACEHOLDER: the read and load steps are not built yet. Today this creates
# the sample tenant databases and lists them with `tenantlake tenants`; it
# says plainly that nothing was read into the lake or loaded anywhere.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
state="$root/.cache/demo"
bin="$root/bin/tenantlake"
[[ -x "$bin" ]] || go build -o "$bin" ./cmd/tenantlake

# Start from scratch: stop a cluster a previous demo left running.
[[ -d "$state/pg" ]] && scripts/pg.sh stop "$state/pg"
rm -rf "$state"
mkdir -p "$state"
trap 'scripts/pg.sh stop "$state/pg"' EXIT

echo "== throwaway PostgreSQL in $state/pg"
admin="$(scripts/pg.sh start "$state/pg")"
echo "$admin"

echo
echo "== sample tenants (scripts/sampledata)"
go run ./scripts/sampledata --admin "$admin" --tenants 3 --seed 1 --registry "$state/tenants.yaml"

echo
echo "== tenantlake tenants"
"$bin" tenants --registry "$state/tenants.yaml" --lake "file://$state/lake"

echo
echo "NOT DONE: the read step (PostgreSQL -> Parquet snapshots on the lake) and the"
echo "load step (lake -> warehouse) are not built into this demo yet. Nothing was"
echo "read into the lake and nothing was loaded. Stopping the PostgreSQL cluster."
