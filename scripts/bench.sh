#!/usr/bin/env bash
# Benchmarks (`make bench`): the PostgreSQL read strategy (issue 3) and the
# PostgreSQL warehouse write strategy (issue 5), in one run on one throwaway
# PostgreSQL cluster (scripts/pg.sh).
#
#   scripts/bench.sh [ROWS...]      default: $ROWS, else 5000000 500000
#
# For each size, creates once an 11-column table of ROWS rows (bigint, int,
# text, numeric(12,2), nullable double, boolean, timestamptz, nullable date,
# uuid, nullable text, nullable jsonb) as tenant "bench", writes it once with
# `COPY bench TO 'file' (FORMAT binary)` (the COPY bytes), then:
#
#   read rounds, ROUNDS (default 3) times alternating:
#     - raw `COPY bench TO STDOUT (FORMAT binary)` into /dev/null (psql), and
#     - `tenantlake read --tenant bench` into a fresh local lake;
#   warehouse rounds, for the first size only, ROUNDS times alternating, each
#   into a fresh database:
#     - raw `COPY bench FROM 'file' (FORMAT binary)` into a new table, and
#     - `tenantlake load --latest` of the snapshot the last read round wrote,
#       the whole load: staging, validation, promotion and the tenant's
#       slices of the combined all-tenants tables (its stage, validate,
#       promote and all-tenants times taken from its --verbose log);
#   and checks that both loaded tables hold every row.
#
# Prints per benchmark the median wall times, their ratio, tenantlake's peak
# RSS (GNU time) and the bytes, each target marked "met" or "missed" from the
# measured figures, and at the end the targets missed. Exits non-zero
# when a step fails (a missed target is not a failure).
#
# Then, big tenants (issue 12): a tenant "big" of four tables of the same
# shape, BIG_ROWS rows in all (default 20000000; 0 skips it), read with
# `tenantlake read --workers 1` and `--workers 4` (read-job processes, each
# with CONNECTIONS connections), one round each: both wall times, their ratio
# and every process's peak RSS (the parent's "task ended" log lines).
#
# Targets: read ≤ 1.25× COPY TO, peak RSS ≤ 150 MiB, lake bytes ≤ 0.4× COPY
# bytes (issue 3); load ≤ 1.25× COPY FROM (issue 10); 4 workers ≤ 1.0× the time
# of 1 worker, each process ≤ 150 MiB (issue 12).
#
# Then scripts/bench-diff.sh: `tenantlake diff` of two snapshots of the first
# size (DIFF_ROWS) with 1% of rows updated, against one `tenantlake read`
# (issue 13: diff ≤ 1.5× read, peak RSS ≤ 256 MiB); DIFF_ROWS=0 skips it.
# Environment: ROWS (sizes, space-separated), ROUNDS, CONNECTIONS (tenantlake
# read --connections, default 2), BIG_ROWS, TENANTLAKE (a built binary;
# default: build bin/tenantlake).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || read -ra sizes <<<"${ROWS:-5000000 500000}"
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-2}
big_rows=${BIG_ROWS:-20000000}

if [ ! -x /usr/bin/time ]; then
  echo "bench: installing GNU time for peak RSS" >&2
  { apt-get update -qq && apt-get install -y -qq time; } >/dev/null
fi
bin=${TENANTLAKE:-bin/tenantlake}
if [ -z "${TENANTLAKE:-}" ]; then
  go build -o "$bin" ./cmd/tenantlake
fi

work=$(mktemp -d /tmp/tenantlake-bench.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/pg.sh stop "$work/pg" || true; rm -rf "$work"; }
trap cleanup EXIT
admin=$(scripts/pg.sh start "$work/pg")
dburl() { echo "${admin%/postgres?*}/$1?sslmode=disable"; }
url=$(dburl bench)
copyfile=$work/pg/bench.copy # in the server's folder: the server writes and reads it
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql "$admin" -c "CREATE DATABASE bench" >/dev/null
cat >"$work/tenants.yaml" <<EOF
tenants:
  - tenant_id: bench
    connection: "$url"
  - tenant_id: big
    connection: "$(dburl big)"
EOF
tl=("$bin" --registry "$work/tenants.yaml" --lake "file://$work/lake")

# The benchmark table's columns, for the source table and the raw COPY FROM target.
columns="id bigint NOT NULL, n integer NOT NULL, name text NOT NULL, amount numeric(12,2) NOT NULL,
  score double precision, flag boolean NOT NULL, created timestamptz NOT NULL, due date,
  ref uuid NOT NULL, note text, doc jsonb"

# bench_rows N: the SELECT of N rows of the benchmark table's shape.
bench_rows() {
  cat <<SQL
SELECT i, i % 100000, 'customer ' || i, (i % 1000000) / 100.0,
       CASE WHEN i % 10 = 0 THEN NULL ELSE i * 0.37 END, i % 2 = 0,
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second',
       CASE WHEN i % 7 = 0 THEN NULL ELSE date '2020-01-01' + (i % 2000) END,
       md5(i::text)::uuid,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || (i % 50000) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('k', i, 'tag', 't' || (i % 100)) END
FROM generate_series(1, $1) i;
SQL
}
. scripts/bench-lib.sh # now, since, median, div, mib
# seconds GODURATION: a Go duration (1m2.5s, 830ms) in seconds.
seconds() {
  awk -v d="$1" 'BEGIN {
    while (match(d, /^[0-9.]+[a-zµ]+/)) {
      t = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1); u = t; sub(/^[0-9.]+/, "", u)
      s += t * (u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6)
    }
    printf "%.3f", s
  }'
}
# phase NAME: the duration of NAME (stage, validate, promote, all_tenants) in
# seconds from the last load's debug log.
phase() { seconds "$(grep -o " $1=[^ ]*" "$work/stderr" | tail -n 1 | cut -d= -f2)"; }
bytes() { find "$1" -type f -name "${2:-*}" -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
# timed OUT CMD...: runs CMD under GNU time with its standard output in OUT;
# sets secs to its wall time and kib to its peak RSS. When CMD fails, shows
# its standard error and exits.
timed() {
  local out=$1 t0
  shift
  t0=$(now)
  /usr/bin/time -v -o "$work/time" "$@" >"$out" 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; echo "bench: failed: $*" >&2; exit 1; }
  secs=$(since "$t0")
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
}
# count URL TABLE: the table's row count, or a failure if it is not the rows made.
count() {
  local n
  n=$(sql "$1" -c "SELECT count(*) FROM $2")
  [ "$n" = "$rows" ] || { echo "bench: $2 has $n rows, want $rows" >&2; exit 1; }
}
missed=()
# target LABEL FIGURE LIMIT: prints FIGURE against "≤ LIMIT", met or missed.
target() {
  local verdict=met
  awk -v v="$2" -v l="$3" 'BEGIN { exit !(v <= l) }' || { verdict=missed; missed+=("$1 at $rows rows ($2 > $3)"); }
  printf '  %-26s %8s   target <= %-6s %s\n' "$1" "$2" "$3" "$verdict"
}

printf 'bench: %s, %s cores, load average at the start: %s\n' "$(date -u +%FT%TZ)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
first=1
for rows in "${sizes[@]}"; do
  echo "== $rows rows: creating the table" >&2
  sql "$url" >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench;
CREATE TABLE bench ($columns, PRIMARY KEY (id));
INSERT INTO bench $(bench_rows "$rows")
VACUUM ANALYZE bench;
COPY bench TO '$copyfile' (FORMAT binary);
SQL
  heap=$(sql "$url" -c "SELECT pg_size_pretty(pg_relation_size('bench'))")
  copy_bytes=$(stat -c %s "$copyfile")

  echo "== $rows rows: $rounds read rounds" >&2
  copy_times=(); read_times=(); rss=()
  for r in $(seq "$rounds"); do
    timed /dev/null psql -qAtX -v ON_ERROR_STOP=1 "$url" -c "COPY bench TO STDOUT (FORMAT binary)"
    copy_times+=("$secs")
    rm -rf "$work/lake"
    timed /dev/null "${tl[@]}" read --tenant bench --connections "$connections"
    read_times+=("$secs"); rss+=("$kib")
    echo "   round $r: COPY TO ${copy_times[-1]} s, tenantlake read ${read_times[-1]} s, peak RSS $(mib "$kib") MiB" >&2
  done
  lake_bytes=$(bytes "$work/lake" '*.parquet')
  mc=$(median "${copy_times[@]}"); mr=$(median "${read_times[@]}")
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
  printf '\nread: %s rows (heap %s), %d rounds, %s connection(s)\n' "$rows" "$heap" "$rounds" "$connections"
  printf '  %-26s %8s s   %d bytes\n' "COPY TO STDOUT, median" "$mc" "$copy_bytes"
  printf '  %-26s %8s s   %d bytes of Parquet\n' "tenantlake read, median" "$mr" "$lake_bytes"
  target "read / COPY time" "$(div "$mr" "$mc")" 1.25
  target "read peak RSS, MiB" "$(mib "$peak")" 150
  target "lake / COPY bytes" "$(div "$lake_bytes" "$copy_bytes")" 0.40

  if [ "$first" = 1 ]; then
    first=0
    echo "== $rows rows: $rounds warehouse rounds" >&2
    raw_times=(); load_times=(); stage_times=(); validate_times=(); promote_times=(); all_times=(); rss=()
    for r in $(seq "$rounds"); do
      sql "$admin" -c "CREATE DATABASE wh_raw" -c "CREATE DATABASE wh_load" >/dev/null
      sql "$(dburl wh_raw)" -c "CREATE TABLE bench ($columns)" >/dev/null
      timed /dev/null psql -qAtX -v ON_ERROR_STOP=1 "$(dburl wh_raw)" -c "COPY bench FROM '$copyfile' (FORMAT binary)"
      raw_times+=("$secs")
      timed /dev/null "${tl[@]}" --verbose load --tenant bench --latest --target "$(dburl wh_load)"
      load_times+=("$secs"); rss+=("$kib"); stage_times+=("$(phase stage)"); validate_times+=("$(phase validate)")
      promote_times+=("$(phase promote)"); all_times+=("$(phase all_tenants)")
      count "$(dburl wh_raw)" bench
      count "$(dburl wh_load)" tenant_bench.bench
      raw_size=$(sql "$(dburl wh_raw)" -c "SELECT pg_total_relation_size('bench')")
      load_size=$(sql "$(dburl wh_load)" -c "SELECT pg_total_relation_size('tenant_bench.bench')")
      sql "$admin" -c "DROP DATABASE wh_raw" -c "DROP DATABASE wh_load" >/dev/null
      echo "   round $r: COPY FROM ${raw_times[-1]} s, tenantlake load ${load_times[-1]} s" \
        "(stage ${stage_times[-1]} s, validate ${validate_times[-1]} s, promote ${promote_times[-1]} s" \
        "of which all-tenants slices ${all_times[-1]} s), peak RSS $(mib "$kib") MiB" >&2
    done
    mraw=$(median "${raw_times[@]}"); mload=$(median "${load_times[@]}")
    peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
    printf '\nwarehouse load: %s rows, %d rounds, each into a fresh database\n' "$rows" "$rounds"
    printf '  %-26s %8s s   %d bytes in, table %d bytes\n' "COPY FROM file, median" "$mraw" "$copy_bytes" "$raw_size"
    printf '  %-26s %8s s   %d bytes in, table %d bytes\n' "tenantlake load, median" "$mload" "$lake_bytes" "$load_size"
    printf '  %-26s %8s s   (Parquet to staging by COPY FROM)\n' "  stage, median" "$(median "${stage_times[@]}")"
    printf '  %-26s %8s s   (counts, profiles, schema checks)\n' "  validate, median" "$(median "${validate_times[@]}")"
    printf '  %-26s %8s s   (one transaction: live tables, record, all-tenants slices)\n' "  promote, median" "$(median "${promote_times[@]}")"
    printf '  %-26s %8s s   (of promote: the slices swapped; their COPY runs within stage)\n' "  all-tenants, median" "$(median "${all_times[@]}")"
    target "load / COPY FROM time" "$(div "$mload" "$mraw")" 1.25
    printf '  %-26s %8s   (no target)\n' "load peak RSS, MiB" "$(mib "$peak")"
  fi
  rm -f "$copyfile"
done

if [ "$big_rows" -gt 0 ]; then
  rows=$big_rows
  per=$((big_rows / 4))
  echo "== big tenant: $big_rows rows in 4 tables: creating them" >&2
  sql "$admin" -c "CREATE DATABASE big" >/dev/null
  for tb in t1 t2 t3 t4; do
    sql "$(dburl big)" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE $tb ($columns, PRIMARY KEY (id));
INSERT INTO $tb $(bench_rows "$per")
VACUUM ANALYZE $tb;
SQL
  done
  big_heap=$(sql "$(dburl big)" -c "SELECT pg_size_pretty(sum(pg_relation_size(oid))) FROM pg_class WHERE relname IN ('t1', 't2', 't3', 't4')")
  declare -A wall taskrss
  for w in 1 4; do
    rm -rf "$work/lake"
    timed /dev/null "${tl[@]}" --json read --tenant big --workers "$w" --connections "$connections"
    wall[$w]=$secs
    taskrss[$w]=$(grep -o 'task ended.*peak_rss_kib=[0-9]*' "$work/stderr" | sed -E 's/.*task=([0-9]+).*peak_rss_kib=([0-9]+)/\1:\2/' |
      awk -F: '{ printf "%s%s=%.1f", (NR > 1 ? " " : ""), $1, $2 / 1024 }')
    got=$("${tl[@]}" --json snapshots --tenant big | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["rows"])')
    [ "$got" = "$((per * 4))" ] || { echo "bench: big tenant read with $w workers holds $got rows, want $((per * 4))" >&2; exit 1; }
    echo "   $w worker(s): ${wall[$w]} s, peak RSS per task (MiB): ${taskrss[$w]}" >&2
  done
  maxrss=$(printf '%s\n' ${taskrss[1]} ${taskrss[4]} | cut -d= -f2 | sort -n | tail -n 1)
  printf '\nbig tenant: %s rows in 4 tables (heap %s), %s cores, %s connection(s) per worker\n' "$big_rows" "$big_heap" "$(nproc)" "$connections"
  printf '  %-26s %8s s   peak RSS per task, MiB: %s\n' "read --workers 1" "${wall[1]}" "${taskrss[1]}"
  printf '  %-26s %8s s   peak RSS per task, MiB: %s\n' "read --workers 4" "${wall[4]}" "${taskrss[4]}"
  target "4 workers / 1 worker time" "$(div "${wall[4]}" "${wall[1]}")" 1.00
  target "worker peak RSS, MiB" "$maxrss" 150
fi

printf '\nload average at the end (this run included): %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#missed[@]} -eq 0 ]; then
  echo "all targets met"
else
  echo "targets missed:"
  printf '  %s\n' "${missed[@]}"
fi

# The snapshot diff (issue 13), on a cluster of its own, at the first size
# (DIFF_ROWS=0: skipped).
if [ "${DIFF_ROWS:-}" != 0 ]; then
  echo
  TENANTLAKE="$bin" DIFF_ROWS="${DIFF_ROWS:-${sizes[0]}}" ROUNDS="$rounds" scripts/bench-diff.sh
fi
