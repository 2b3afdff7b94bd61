#!/usr/bin/env bash
# Benchmark of the event-driven pipeline (issue 9), part of `make bench`:
#
#   1. one local cycle, `tenantlake run --once`, over TENANTS (default 1000)
#      tenants, each its own database of 10 small tables of about 100 rows
#      (made from one template database), into a PostgreSQL warehouse in the
#      same throwaway cluster: the cycle's wall time, tenantlake's own CPU
#      time per tenant (user + sys of the tenantlake process, from GNU time,
#      divided by the tenants) and its peak RSS. Targets: <= 20 ms of CPU per
#      tenant, the cycle within 5 minutes. The cycle must load every tenant.
#   2. "as of T" among SNAPSHOTS (default 10000) snapshots of one tenant on a
#      file lake and on the in-process GCS fake (scripts/benchasof): <= 100 ms.
#
# Prints each figure with its target, "met" or "missed"; exits non-zero only
# when a step fails. Environment: TENANTS, SNAPSHOTS, TENANTLAKE (a built
# binary; default: build bin/tenantlake).
set -euo pipefail
cd "$(dirname "$0")/.."

tenants=${TENANTS:-1000}
snapshots=${SNAPSHOTS:-10000}
if [ ! -x /usr/bin/time ]; then
  echo "bench-cycle: installing GNU time for CPU time and peak RSS" >&2
  { apt-get update -qq && apt-get install -y -qq time; } >/dev/null
fi
bin=${TENANTLAKE:-bin/tenantlake}
if [ -z "${TENANTLAKE:-}" ]; then
  go build -o "$bin" ./cmd/tenantlake
fi
work=$(mktemp -d /tmp/tenantlake-bench-cycle.XXXXXX)
chmod 755 "$work"
cleanup() { scripts/pg.sh stop "$work/pg" >/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
admin=$(scripts/pg.sh start "$work/pg")
dburl() { echo "${admin%/postgres?*}/$1?sslmode=disable"; }
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
missed=()
# check NAME VALUE TARGET: sets $v to met or missed, and records a miss.
check() {
  if awk -v v="$2" -v t="$3" 'BEGIN { exit !(v <= t) }'; then v=met; else v=missed; missed+=("$1 $2 (target <= $3)"); fi
}

echo "bench-cycle: $(date -u +%FT%TZ), $(nproc) cores, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $tenants tenants x 10 tables: making the template and the databases"
sql "$admin" -c "CREATE DATABASE cycle_tpl" >/dev/null
sql "$(dburl cycle_tpl)" <<'SQL' >/dev/null
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, created timestamptz NOT NULL);
CREATE TABLE products (id int PRIMARY KEY, title text NOT NULL, price numeric(10,2) NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, placed date NOT NULL);
CREATE TABLE order_items (order_id bigint, line int, product_id int, qty int NOT NULL, PRIMARY KEY (order_id, line));
CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint, total numeric(12,2), paid boolean NOT NULL);
CREATE TABLE payments (id bigint PRIMARY KEY, invoice_id bigint, amount numeric(12,2), at timestamptz);
CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload jsonb, at timestamptz);
CREATE TABLE tickets (id bigint PRIMARY KEY, subject text, score double precision, ref uuid);
CREATE TABLE tags (id int PRIMARY KEY, names text[]);
CREATE TABLE audit (at timestamptz, who text, what text);
INSERT INTO customers SELECT i, 'customer ' || i, 'c' || i || '@example.com', '2026-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 100) i;
INSERT INTO products SELECT i, 'product ' || i, i * 1.25 FROM generate_series(1, 100) i;
INSERT INTO orders SELECT i, 1 + i % 100, (ARRAY['new','paid','shipped'])[1 + i % 3], '2026-01-01'::date + i FROM generate_series(1, 100) i;
INSERT INTO order_items SELECT 1 + i / 2, i % 2, 1 + i % 100, 1 + i % 5 FROM generate_series(1, 100) i;
INSERT INTO invoices SELECT i, i, i * 10.5, i % 2 = 0 FROM generate_series(1, 100) i;
INSERT INTO payments SELECT i, i, i * 10.5, '2026-02-01'::timestamptz + i * interval '1 minute' FROM generate_series(1, 100) i;
INSERT INTO events SELECT i, 'kind' || i % 7, jsonb_build_object('n', i, 'ok', i % 2 = 0), '2026-03-01'::timestamptz + i * interval '1 second' FROM generate_series(1, 100) i;
INSERT INTO tickets SELECT i, 'ticket ' || i, i / 7.0, md5(i::text)::uuid FROM generate_series(1, 100) i;
INSERT INTO tags SELECT i, ARRAY['a' || i, 'b' || i] FROM generate_series(1, 100) i;
INSERT INTO audit SELECT '2026-04-01'::timestamptz + i * interval '1 minute', 'user' || i % 9, 'did ' || i FROM generate_series(1, 100) i;
SQL
sql "$admin" -c "ALTER DATABASE cycle_tpl IS_TEMPLATE true" >/dev/null
echo "tenants:" >"$work/tenants.yaml"
start=$(date +%s)
for i in $(seq -w 1 "$tenants"); do
  sql "$admin" -c "CREATE DATABASE t$i TEMPLATE cycle_tpl" >/dev/null
  printf '  - tenant_id: t%s\n    connection: "%s"\n' "$i" "$(dburl "t$i")" >>"$work/tenants.yaml"
done
sql "$admin" -c "CREATE DATABASE warehouse" >/dev/null
echo "   made in $(( $(date +%s) - start )) s"

echo "== one cycle: tenantlake run --once"
/usr/bin/time -f '%e %U %S %M' -o "$work/time" \
  "$bin" --registry "$work/tenants.yaml" --lake "file://$work/lake" run --once --json --listen 127.0.0.1:0 \
  --target "$(dburl warehouse)" >"$work/summary.json" 2>"$work/run.log" || {
  echo "bench-cycle: the cycle failed; the last log lines:" >&2
  tail -n 20 "$work/run.log" >&2
  exit 1
}
read -r wall user sys kib <"$work/time"
loaded=$(jq '[.tenants[] | select(.loads[].outcome == "loaded")] | length' "$work/summary.json")
failed=$(jq '.failed_tenants' "$work/summary.json")
if [ "$loaded" != "$tenants" ] || [ "$failed" != 0 ]; then
  echo "bench-cycle: $loaded of $tenants tenants loaded, $failed failed" >&2
  exit 1
fi
cpu_ms=$(awk -v u="$user" -v s="$sys" -v n="$tenants" 'BEGIN { printf "%.2f", (u + s) * 1000 / n }')
printf '\ncycle: %d tenants x 10 tables (about 100 rows each), every tenant loaded and validated\n' "$tenants"
check "cycle wall time, s" "$wall" 300
printf '  %-32s %10s s      target <= 300 s    %s\n' "wall time" "$wall" "$v"
check "CPU per tenant, ms" "$cpu_ms" 20
printf '  %-32s %10s ms     target <= 20 ms    %s\n' "tenantlake CPU per tenant" "$cpu_ms" "$v"
printf '  %-32s %10s s user, %s s sys\n' "tenantlake CPU" "$user" "$sys"
printf '  %-32s %10s MiB    (no target)\n' "peak RSS" "$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')"

echo
echo "== as of T among $snapshots snapshots (scripts/benchasof)"
asof=$(go run ./scripts/benchasof -snapshots "$snapshots" -rounds 5)
echo "$asof"
grep -q "target missed" <<<"$asof" && missed+=("as-of resolution (see above)")

printf '\nload average at the end (this run included): %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#missed[@]} -eq 0 ]; then
  echo "all cycle targets met"
else
  echo "cycle targets missed:"
  printf '  %s\n' "${missed[@]}"
fi
