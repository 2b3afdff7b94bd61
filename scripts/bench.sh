#!/usr/bin/env bash
# Benchmark of the PostgreSQL read strategy (`make bench`, issue 3).
#
#   scripts/bench.sh [ROWS...]      default: 5000000 500000
#
# For each size, creates an 11-column table of ROWS rows (bigint, int, text,
# numeric(12,2), nullable double, boolean, timestamptz, nullable date, uuid,
# nullable text, nullable jsonb) as tenant "bench" in a throwaway PostgreSQL
# (scripts/pg.sh), then alternates ROUNDS (default 3) times:
#   - raw `COPY bench TO STDOUT (FORMAT binary)` into /dev/null (psql), and
#   - `tenantlake read --tenant bench` into a fresh local lake,
# and prints the median wall times, their ratio, tenantlake's peak RSS and the
# lake bytes against the COPY bytes.
#
# Targets: read ≤ 1.25× COPY; peak RSS ≤ 150 MiB; lake bytes ≤ 0.4× COPY bytes.
# Environment: ROUNDS, CONNECTIONS (tenantlake read --connections, default 2),
# TENANTLAKE (a built binary; default: build bin/tenantlake).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5000000 500000)
rounds=${ROUNDS:-3}
connections=${CONNECTIONS:-2}

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
url=${admin%/postgres?*}/bench?sslmode=disable
psql -qX "$admin" -c "CREATE DATABASE bench" >/dev/null
cat >"$work/tenants.yaml" <<EOF
tenants:
  - tenant_id: bench
    connection: "$url"
EOF

now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

for rows in "${sizes[@]}"; do
  echo "== $rows rows: creating the table" >&2
  psql -qX "$url" -v ON_ERROR_STOP=1 >/dev/null <<SQL
DROP TABLE IF EXISTS bench;
CREATE TABLE bench (
  id bigint PRIMARY KEY, n integer NOT NULL, name text NOT NULL, amount numeric(12,2) NOT NULL,
  score double precision, flag boolean NOT NULL, created timestamptz NOT NULL, due date,
  ref uuid NOT NULL, note text, doc jsonb);
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
  heap=$(psql -qAtX "$url" -c "SELECT pg_size_pretty(pg_relation_size('bench'))")
  copy_bytes=$(psql -qAtX "$url" -c "COPY bench TO STDOUT (FORMAT binary)" | wc -c)
  copy_times=(); read_times=(); rss=(); lake_bytes=0
  for r in $(seq "$rounds"); do
    t0=$(now)
    psql -qAtX "$url" -c "COPY bench TO STDOUT (FORMAT binary)" >/dev/null
    t1=$(now)
    copy_times+=("$(echo "$t1 - $t0" | bc)")

    rm -rf "$work/lake"
    t0=$(now)
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" read --registry "$work/tenants.yaml" --lake "file://$work/lake" \
      --tenant bench --connections "$connections" >/dev/null 2>"$work/read.log" \
      || { cat "$work/read.log" >&2; exit 1; }
    t1=$(now)
    read_times+=("$(echo "$t1 - $t0" | bc)")
    rss+=("$(tail -n 1 "$work/rss")")
    lake_bytes=$(find "$work/lake" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s}')
    echo "   round $r: COPY ${copy_times[-1]} s, tenantlake read ${read_times[-1]} s, peak RSS $(( ${rss[-1]} / 1024 )) MiB" >&2
  done
  mc=$(median "${copy_times[@]}"); mr=$(median "${read_times[@]}")
  peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
  printf '%s rows (heap %s), %d rounds, %s connection(s):\n' "$rows" "$heap" "$rounds" "$connections"
  printf '  COPY binary to /dev/null   median %7.2f s   %d bytes\n' "$mc" "$copy_bytes"
  printf '  tenantlake read            median %7.2f s   %d bytes in the lake\n' "$mr" "$lake_bytes"
  printf '  read / COPY time           %.2f   (target <= 1.25)\n' "$(echo "$mr / $mc" | bc -l)"
  printf '  peak RSS                   %d MiB (target <= 150)\n' "$(( peak / 1024 ))"
  printf '  lake / COPY bytes          %.2f   (target <= 0.40)\n' "$(echo "$lake_bytes / $copy_bytes" | bc -l)"
done
