#!/usr/bin/env bash
# Runs every check and test of tenantlake, with the services they need:
#
#   1. gofmt: no Go file may need formatting;
#   2. go vet ./...;
#   3. terraform fmt -check -recursive terraform, when terraform is on the
#      PATH (the module's policies are checked by the Go tests in terraform/);
#   4. go test -count=1 ./... against ONE throwaway PostgreSQL cluster started
#      here (scripts/pg.sh, in a temp folder) and shared by every package
#      through TENANTLAKE_TEST_PG (see internal/pgtest).
#
# Every step runs even when an earlier one failed, so one run shows every
# problem; the script exits non-zero if any step failed, and names them. The
# cluster is always stopped and its folder removed, whatever happens. Extra arguments go to `go test`
# (e.g. scripts/test.sh -run TestGC ./cmd/...; the default is ./...).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tenantlake-test-XXXXXX")"
chmod 755 "$tmp" # as root, the server runs as postgres and must reach $tmp/pg
cleanup() {
	"$root/scripts/pg.sh" stop "$tmp/pg" || echo "test.sh: could not stop the PostgreSQL cluster in $tmp/pg" >&2
	rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
failed=()

step "gofmt"
unformatted="$(find . -name '*.go' -not -path './.cache/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "these files need gofmt -w (make fmt):" >&2
	echo "$unformatted" >&2
	failed+=(gofmt)
fi

step "go vet ./..."
go vet ./... || failed+=("go vet")

if command -v terraform >/dev/null; then
	step "terraform fmt -check -recursive terraform"
	# TF_CLI_CONFIG_FILE: no ~/.terraformrc is needed (or read) to format.
	TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform || failed+=("terraform fmt")
else
	step "terraform fmt: skipped, terraform is not on the PATH"
fi

step "PostgreSQL (throwaway cluster in $tmp/pg)"
TENANTLAKE_TEST_PG="$("$root/scripts/pg.sh" start "$tmp/pg")"
export TENANTLAKE_TEST_PG
echo "$TENANTLAKE_TEST_PG"

# The BigQuery emulator (built by `make emulators` into .cache/bin) is started
# by the writers/bigquery tests themselves, each on its own free port.

pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
step "go test -count=1 -timeout 45m ${pkgs[*]}"
go test -count=1 -timeout 45m "${pkgs[@]}" || failed+=("go test")

if [[ ${#failed[@]} -gt 0 ]]; then
	step "FAILED: ${failed[*]}"
	exit 1
fi
step "all checks and tests passed"
