#!/usr/bin/env bash
# Warehouse load benchmark: loads a ROWS-row (default 5,000,000), 11-column
# snapshot into the PostgreSQL warehouse with `tenantlake load`, and compares,
# in the same run and on the same cluster, with a raw COPY FROM of the same
# rows from a binary file made by COPY TO. Target (issue 5): the load takes
# at most 1.4x the raw COPY FROM.
#
#   scripts/bench-warehouse.sh            ROWS=1000000 scripts/bench-warehouse.sh
#
# State in .cache/bench-warehouse/ (deleted at the start); the cluster is
# stopped at the end. Prints the figures; exits non-zero if a step fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rows="${ROWS:-5000000}"
state="$root/.cache/bench-warehouse"
bin="$root/bin/tenantlake"
go build -o "$bin" ./cmd/tenantlake

if [[ -d "$state/pg" ]]; then scripts/pg.sh stop "$state/pg"; fi
rm -rf "$state"
mkdir -p "$state"
trap 'scripts/pg.sh stop "$state/pg"' EXIT
admin="$(scripts/pg.sh start "$state/pg")"
src="${admin/\/postgres\?//bench_source?}"
warehouse="${admin/\/postgres\?//warehouse?}"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

sql "$admin" -c 'CREATE DATABASE bench_source' -c 'CREATE DATABASE warehouse'
echo "== source table: $rows rows, 11 columns"
t0=$(now)
sql "$src" <<SQL
CREATE TABLE big (
	id bigint PRIMARY KEY, n integer NOT NULL, name text NOT NULL, amount numeric(12,2),
	score double precision, flag boolean, at timestamptz, day date, ref uuid, note text, doc jsonb
);
INSERT INTO big
SELECT i, (i % 100000)::int, 'name-' || i, (i % 1000000) / 100.0, i * 0.5, i % 2 = 0,
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second', date '2000-01-01' + (i % 10000),
       md5(i::text)::uuid, CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || (i % 977) END,
       jsonb_build_object('k', i % 10, 'tags', jsonb_build_array('a', i % 3))
FROM generate_series(1, $rows) AS i;
VACUUM ANALYZE big;
SQL
echo "made in $(secs "$t0" "$(now)") s"

export TENANTLAKE_LAKE="file://$state/lake"
cat >"$state/tenants.yaml" <<YAML
tenants:
  - tenant_id: bench
    connection: $src
    is_active: true
YAML
export TENANTLAKE_REGISTRY="$state/tenants.yaml"

echo "== tenantlake read"
t0=$(now)
"$bin" read --tenant bench
echo "read in $(secs "$t0" "$(now)") s"

echo "== raw COPY FROM of the same rows (binary file made by COPY TO)"
file="$state/pg/big.bin"
sql "$src" -c "COPY big TO '$file' (FORMAT binary)"
sql "$warehouse" <<'SQL'
CREATE TABLE raw_big (
	id bigint NOT NULL, n integer NOT NULL, name text NOT NULL, amount numeric(12,2),
	score double precision, flag boolean, at timestamptz, day date, ref uuid, note text, doc jsonb
);
SQL
t0=$(now)
sql "$warehouse" -c "COPY raw_big FROM '$file' (FORMAT binary)"
raw=$(secs "$t0" "$(now)")
echo "raw COPY FROM: $raw s"

echo "== tenantlake load (stage with COPY, validate counts, profiles and schema, promote)"
t0=$(now)
/usr/bin/time -f %M -o "$state/load.rss" "$bin" load --tenant bench --latest --target "$warehouse"
full=$(secs "$t0" "$(now)")

echo "== tenantlake load again, profile checks off (new snapshot id: same rows)"
"$bin" read --tenant bench >/dev/null
t0=$(now)
"$bin" load --tenant bench --latest --target "$warehouse&profile_check=false" >/dev/null
lean=$(secs "$t0" "$(now)")

echo
echo "rows:                                  $rows"
echo "raw COPY FROM (binary file):           $raw s"
echo "tenantlake load, all checks:           $full s  ($(awk -v a="$full" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')x raw)"
echo "tenantlake load, profile checks off:   $lean s  ($(awk -v a="$lean" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')x raw)"
echo "tenantlake load, peak memory (RSS):   $(( $(cat "$state/load.rss") / 1024 )) MiB"
echo "target: at most 1.4x raw"
