#!/usr/bin/env bash
# The check of the BigQuery writer on a real project: loads the shared
# corpus (every type, the extremes: years 1 and 9999, TIME, NaN and
# ±Infinity FLOAT64, the widest NUMERIC and BIGNUMERIC, JSON) from a gs://
# lake in BUCKET and streamed from an in-memory lake, promotes it with copy
# jobs (and PARSE_JSON statements for tables with JSON), and compares every
# value read back with the source database, and every live table's
# metadata (no expiration).
#
#   scripts/bigquery-smoke.sh PROJECT BUCKET [LOCATION]
#
# Needs: Application Default Credentials (gcloud auth application-default
# login) allowed to create datasets and jobs in PROJECT and objects in
# BUCKET, and PostgreSQL server binaries (a throwaway cluster holds the
# source, as in make test). Datasets are named smoke_<run>_… and deleted at
# the end; the lake objects stay under gs://BUCKET/tenantlake-smoke-<run>
# (the test prints the command that removes them). It costs a few load and
# query jobs on a few kilobytes.
#
# Never run from the machines tenantlake is developed on (they reach no
# Google service): the points it settles are listed in the README,
# "What was verified against the BigQuery emulator only".
set -euo pipefail

project=${1:-}; bucket=${2:-}; location=${3:-}
[ -n "$project" ] && [ -n "$bucket" ] || { sed -n '2,23p' "$0" >&2; exit 2; }
cd "$(dirname "$0")/.."
TENANTLAKE_SMOKE_PROJECT="$project" TENANTLAKE_SMOKE_BUCKET="$bucket" TENANTLAKE_SMOKE_LOCATION="$location" \
	exec go test -tags bigquerysmoke -count=1 -v -timeout 30m ./writers/bigquery/smoke/
