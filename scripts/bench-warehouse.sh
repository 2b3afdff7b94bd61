#!/usr/bin/env bash
# Warehouse load benchmark: loads a ROWS-row (default 5,000,000), 11-column
# snapshot into the PostgreSQL warehouse with `tenantlake load`, and compares,
# in the same run and on the same cluster, with a raw COPY FROM of the same
# rows from a binary file made by COPY TO. Target (issue 5): the load takes
# at most 1.4x the raw COPY FROM.
#
#   scripts/bench-warehouse.sh            ROWS=1000000 ROUNDS=1 scripts/bench-warehouse.sh
#
# State in .cache/bench-warehouse/ (deleted at the start); the cluster is
# stopped at the end. Prints the figures; exits non-zero if a step fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rows="${ROWS:-5000000}"
rounds="${ROUNDS:-3}"
state="$root/.cache/bench-warehouse"
bin="$root/bin/tenantlake"
go build -o "$bin" ./cmd/tenantlake

if [[ -d "$state/pg" ]]; then scripts/pg.sh stop "$state/pg"; fi
rm -rf "$state"
mkdir -p "$state"
trap 'scripts/pg.sh stop "$state/pg"' EXIT
admin="$(scripts/pg.sh start "$state/pg")"
src="${admin/\/postgres\?//bench_source?}"
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

sql "$admin" -c 'CREATE DATABASE bench_source'
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

file="$state/pg/big.bin"
sql "$src" -c "COPY big TO '$file' (FORMAT binary)"

# Other work on the machine skews single runs: ROUNDS rounds alternate the
# three measurements, each into a fresh warehouse database, and the best of
# each is compared.
raw=() full=() lean=()
for round in $(seq 1 "$rounds"); do
  echo "== round $round of $rounds"
  for kind in raw full lean; do
    db="wh_${round}_$kind"
    sql "$admin" -c "CREATE DATABASE $db"
    url="${admin/\/postgres\?//$db?}"
    case $kind in
    raw)
      sql "$url" -c "CREATE TABLE raw_big (id bigint NOT NULL, n integer NOT NULL, name text NOT NULL, amount numeric(12,2),
        score double precision, flag boolean, at timestamptz, day date, ref uuid, note text, doc jsonb)"
      t0=$(now)
      sql "$url" -c "COPY raw_big FROM '$file' (FORMAT binary)"
      raw+=("$(secs "$t0" "$(now)")")
      echo "raw COPY FROM: ${raw[-1]} s"
      ;;
    full)
      t0=$(now)
      /usr/bin/time -f %M -o "$state/load.rss" "$bin" load --tenant bench --latest --target "$url" >"$state/load-$round.txt"
      full+=("$(secs "$t0" "$(now)")")
      echo "tenantlake load (counts, profiles, schema): ${full[-1]} s"
      ;;
    lean)
      t0=$(now)
      "$bin" load --tenant bench --latest --target "$url&profile_check=false" >/dev/null
      lean+=("$(secs "$t0" "$(now)")")
      echo "tenantlake load (profile checks off): ${lean[-1]} s"
      ;;
    esac
    sql "$admin" -c "DROP DATABASE $db"
  done
done
cat "$state/load-1.txt"

best() { printf '%s\n' "$@" | sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
braw=$(best "${raw[@]}") bfull=$(best "${full[@]}") blean=$(best "${lean[@]}")
echo
echo "rows: $rows; best of $rounds rounds (all rounds: raw ${raw[*]}; load ${full[*]}; profile off ${lean[*]})"
echo "raw COPY FROM (binary file):           $braw s"
echo "tenantlake load, all checks:           $bfull s  ($(ratio "$bfull" "$braw")x raw)"
echo "tenantlake load, profile checks off:   $blean s  ($(ratio "$blean" "$braw")x raw)"
echo "tenantlake load, peak memory (RSS):    $(( $(cat "$state/load.rss") / 1024 )) MiB"
echo "target: at most 1.4x raw"
