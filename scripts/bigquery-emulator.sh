#!/usr/bin/env bash
# Builds the BigQuery emulator command (github.com/goccy/bigquery-emulator,
# pinned in scripts/bigquery-emulator/go.mod, a module of its own so the
# emulator never links into tenantlake) into .cache/bin/bigquery-emulator,
# once. Later runs do nothing while the binary exists.
#
# The emulator bundles ZetaSQL, which builds only with clang (gcc 12 fails):
# clang is installed with apt-get when missing. The first build compiles one
# huge C++ unit: about 11 minutes and over 5 GiB of memory.
#
# Usage: scripts/bigquery-emulator.sh        prints the binary's path
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.cache/bin/bigquery-emulator"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
	echo "bigquery-emulator.sh: installing clang (ZetaSQL does not build with gcc)" >&2
	sudo=""
	if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
	$sudo apt-get update >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y clang >&2
fi

mkdir -p "$(dirname "$bin")"
echo "bigquery-emulator.sh: building $bin (first build: about 11 minutes)" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
	cd "$root/scripts/bigquery-emulator"
	CC=clang CXX=clang++ CGO_ENABLED=1 go build -o "$tmp" \
		github.com/goccy/bigquery-emulator/cmd/bigquery-emulator
)
mv "$tmp" "$bin"
echo "$bin"
