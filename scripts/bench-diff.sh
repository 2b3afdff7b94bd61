#!/usr/bin/env bash
# Benchmark of `tenantlake diff` (issue 13), called by scripts/bench.sh
# (`make bench`), on a throwaway PostgreSQL cluster of its own (scripts/pg.sh).
#
#   scripts/bench-diff.sh [ROWS]     default: $DIFF_ROWS, else 5000000
#
# Creates the bench table of scripts/bench.sh (11 columns, primary key id)
# with ROWS rows as tenant "bench", reads it (snapshot 1), updates 1% of its
# rows (every id divisible by 100: name and amount), reads it again
# (snapshot 2), then ROUNDS (default 3) times alternating:
#   - `tenantlake read --tenant bench` of the changed table into a fresh lake;
#   - `tenantlake diff --tenant bench --from S1 --to S2 --json`, whose counts
#     are checked: ROWS/100 updated, nothing inserted or deleted.
# Prints the median wall times, their ratio and the diff's peak RSS (GNU
# time), each against its target (diff ≤ 1.5× read, peak RSS ≤ 256 MiB),
# "met" or "missed". Then, ROUNDS times, the cost of change tables: two
# fresh warehouse databases get snapshot 1 loaded, then snapshot 2's load is
# timed into each, one plain, one with changes=true (whose bench_changes is
# checked to hold the ROWS/100 updates); the median times and their ratio
# are printed (no target). Exits non-zero only when a step fails.
# Environment: DIFF_ROWS, ROUNDS, TENANTLAKE (a built binary; default: build
# bin/tenantlake), DIFF_ARGS (extra arguments to tenantlake diff, e.g.
# "--memory 32").
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${1:-${DIFF_ROWS:-5000000}}
rounds=${ROUNDS:-3}
[ $((rows % 100)) -eq 0 ] && [ "$rows" -ge 100 ] || { echo "bench-diff: ROWS must be a multiple of 100" >&2; exit 1; }

if [ ! -x /usr/bin/time ]; then
  echo "bench-diff: installing GNU time for peak RSS" >&2
  { apt-get update -qq && apt-get install -y -qq time; } >/dev/null
fi
bin=${TENANTLAKE:-bin/tenantlake}
if [ -z "${TENANTLAKE:-}" ]; then
  go build -o "$bin" ./cmd/tenantlake
fi

work=$(mktemp -d /tmp/tenantlake-bench-diff.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/pg.sh stop "$work/pg" || true; rm -rf "$work"; }
trap cleanup EXIT
admin=$(scripts/pg.sh start "$work/pg")
url="${admin%/postgres?*}/bench?sslmode=disable"
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql "$admin" -c "CREATE DATABASE bench" >/dev/null
cat >"$work/tenants.yaml" <<EOF
tenants:
  - tenant_id: bench
    connection: "$url"
EOF
tl=("$bin" --registry "$work/tenants.yaml")

. scripts/bench-lib.sh # now, since, median, div, mib
timed() {
  local out=$1 t0
  shift
  t0=$(now)
  /usr/bin/time -v -o "$work/time" "$@" >"$out" 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; echo "bench-diff: failed: $*" >&2; exit 1; }
  secs=$(since "$t0")
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
}
missed=()
target() {
  local verdict=met
  awk -v v="$2" -v l="$3" 'BEGIN { exit !(v <= l) }' || { verdict=missed; missed+=("$1 at $rows rows ($2 > $3)"); }
  printf '  %-26s %8s   target <= %-6s %s\n' "$1" "$2" "$3" "$verdict"
}

printf 'bench-diff: %s, %s cores, load average at the start: %s\n' "$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $rows rows: creating the table and two snapshots (1% of rows updated between them)" >&2
sql "$url" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE bench (id bigint NOT NULL, n integer NOT NULL, name text NOT NULL, amount numeric(12,2) NOT NULL,
  score double precision, flag boolean NOT NULL, created timestamptz NOT NULL, due date,
  ref uuid NOT NULL, note text, doc jsonb, PRIMARY KEY (id));
INSERT INTO bench
SELECT i, i % 100000, 'customer ' || i, (i % 1000000) / 100.0,
       CASE WHEN i % 10 = 0 THEN NULL ELSE i * 0.37 END, i % 2 = 0,
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second',
       CASE WHEN i % 7 = 0 THEN NULL ELSE date '2020-01-01' + (i % 2000) END,
       md5(i::text)::uuid,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || (i % 50000) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('k', i, 'tag', 't' || (i % 100)) END
FROM generate_series(1, $rows) i;
VACUUM ANALYZE bench;
SQL
"${tl[@]}" --lake "file://$work/lake" read --tenant bench >/dev/null 2>&1
sql "$url" -c "UPDATE bench SET name = name || ' changed', amount = amount + 1 WHERE id % 100 = 0" -c "VACUUM ANALYZE bench" >/dev/null
"${tl[@]}" --lake "file://$work/lake" read --tenant bench >/dev/null 2>&1
mapfile -t ids < <("${tl[@]}" --lake "file://$work/lake" snapshots --tenant bench --json | python3 -c 'import json, sys; print("\n".join(s["snapshot_id"] for s in json.load(sys.stdin)))')
s2=${ids[0]} s1=${ids[1]}
parquet_bytes=$(find "$work/lake" -path "*snapshot=$s2*" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')

echo "== $rows rows: $rounds rounds" >&2
read_times=(); diff_times=(); rss=()
for r in $(seq "$rounds"); do
  rm -rf "$work/lake2"
  timed /dev/null "${tl[@]}" --lake "file://$work/lake2" read --tenant bench
  read_times+=("$secs")
  # shellcheck disable=SC2086
  timed "$work/diff.json" "${tl[@]}" --lake "file://$work/lake" diff --tenant bench --from "$s1" --to "$s2" --json --temp-dir "$work" ${DIFF_ARGS:-}
  diff_times+=("$secs"); rss+=("$kib")
  got=$(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["tables"][0]; print(t["inserted"], t["deleted"], t["updated"])' "$work/diff.json")
  [ "$got" = "0 0 $((rows / 100))" ] || { echo "bench-diff: diff counted (inserted deleted updated) $got, want 0 0 $((rows / 100))" >&2; exit 1; }
  echo "   round $r: tenantlake read ${read_times[-1]} s, tenantlake diff ${diff_times[-1]} s, peak RSS $(mib "$kib") MiB" >&2
done
echo "== $rows rows: $rounds rounds of the load of snapshot 2 after snapshot 1, with and without change tables" >&2
whurl() { echo "${admin%/postgres?*}/$1?sslmode=disable"; }
plain_times=(); changes_times=()
for r in $(seq "$rounds"); do
  sql "$admin" -c "CREATE DATABASE wh_plain" -c "CREATE DATABASE wh_changes" >/dev/null
  for wh in "$(whurl wh_plain)" "$(whurl wh_changes)&changes=true"; do
    "${tl[@]}" --lake "file://$work/lake" load --tenant bench --snapshot "$s1" --target "$wh" >/dev/null
  done
  timed /dev/null "${tl[@]}" --lake "file://$work/lake" load --tenant bench --snapshot "$s2" --target "$(whurl wh_plain)"
  plain_times+=("$secs")
  timed /dev/null "${tl[@]}" --lake "file://$work/lake" load --tenant bench --snapshot "$s2" --target "$(whurl wh_changes)&changes=true"
  changes_times+=("$secs")
  got=$(sql "$(whurl wh_changes)" -c "SELECT count(*) FILTER (WHERE operation = 'update'), count(*) FROM tenant_bench.bench_changes")
  [ "$got" = "$((rows / 100))|$((rows / 100))" ] || { echo "bench-diff: bench_changes holds (updates|rows) $got, want $((rows / 100)) updates only" >&2; exit 1; }
  sql "$admin" -c "DROP DATABASE wh_plain" -c "DROP DATABASE wh_changes" >/dev/null
  echo "   round $r: load ${plain_times[-1]} s, with changes=true ${changes_times[-1]} s" >&2
done

mr=$(median "${read_times[@]}"); md=$(median "${diff_times[@]}")
peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
printf '\ndiff: two snapshots of %s rows (%d bytes of Parquet each), %d rows (1%%) updated, %d rounds\n' "$rows" "$parquet_bytes" "$((rows / 100))" "$rounds"
printf '  %-26s %8s s\n' "tenantlake read, median" "$mr"
printf '  %-26s %8s s\n' "tenantlake diff, median" "$md"
target "diff / read time" "$(div "$md" "$mr")" 1.50
target "diff peak RSS, MiB" "$(mib "$peak")" 256
mp=$(median "${plain_times[@]}"); mc=$(median "${changes_times[@]}")
printf 'change tables: the warehouse load of snapshot 2 after snapshot 1 (%d change rows), %d rounds\n' "$((rows / 100))" "$rounds"
printf '  %-26s %8s s\n' "load, median" "$mp"
printf '  %-26s %8s s\n' "load changes=true, median" "$mc"
printf '  %-26s %8s   (no target)\n' "changes=true / load time" "$(div "$mc" "$mp")"
if [ ${#missed[@]} -eq 0 ]; then
  echo "diff: all targets met"
else
  echo "diff: targets missed:"
  printf '  %s\n' "${missed[@]}"
fi
