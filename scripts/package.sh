#!/usr/bin/env bash
# Builds the source archive of the Cloud Functions (2nd gen), the one the Go
# buildpack builds every tenantlake function from (terraform/ uploads it):
#
#   scripts/package.sh [OUT]     (default dist/tenantlake-functions.zip)
#
# What the buildpack needs, and what this script checks before it writes the
# archive:
#   - go.mod and go.sum at the archive's root (the module, built with
#     modules downloaded by the buildpack; no vendor folder);
#   - a Go package at the root (functions.go, package tenantlake) that imports
#     github.com/GoogleCloudPlatform/functions-framework-go/functions and the
#     registering package github.com/tenantlake/tenantlake/functions: the
#     buildpack then generates a main that imports the root package and calls
#     funcframework.Start, and FUNCTION_TARGET picks the function. (No
#     GOOGLE_FUNCTION_SOURCE is needed: that setting is for the Python and
#     Node.js buildpacks.)
#
# The archive holds the files git tracks, as they are in the working tree,
# less what a build never needs: terraform/ (and any Terraform state), .ci/,
# dot files, dist/, bin/, .cache/. Untracked files (state, built binaries,
# .cache) are never included. File times are fixed, so the same sources give
# the same archive, byte for byte: Terraform names the uploaded object after
# its MD5 and redeploys only when the sources changed.
#
# Last, the script builds the archive as the buildpack would, offline, from a
# scratch copy: it adds the buildpack's declarative main
# (functions.local/app/main.go) and runs go build on it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="${1:-dist/tenantlake-functions.zip}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac

command -v zip >/dev/null || { echo "package.sh: zip is not installed (apt-get install zip)" >&2; exit 1; }
command -v git >/dev/null || { echo "package.sh: git is not installed" >&2; exit 1; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "package.sh: $root is not a git work tree (the archive holds the files git tracks)" >&2; exit 1; }

for f in go.mod go.sum functions.go; do
	[[ -f "$f" ]] || { echo "package.sh: $f is missing at the module root" >&2; exit 1; }
done
grep -q '"github.com/GoogleCloudPlatform/functions-framework-go/functions"' functions.go ||
	{ echo "package.sh: functions.go must import functions-framework-go/functions (the buildpack's sign of declarative registration)" >&2; exit 1; }
grep -q '"github.com/tenantlake/tenantlake/functions"' functions.go ||
	{ echo "package.sh: functions.go must import github.com/tenantlake/tenantlake/functions (the package that registers the functions)" >&2; exit 1; }
[[ -d functions ]] || { echo "package.sh: the functions package (functions/) is missing" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tenantlake-package-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
stage="$tmp/src"
mkdir -p "$stage"

# Tracked files that exist in the working tree (a deletion not yet
# committed is left out), less what no build needs.
git ls-files -z --cached |
	while IFS= read -r -d '' f; do
		[[ -e "$f" ]] || continue
		case "$f" in
		terraform/* | .ci/* | dist/* | bin/* | .cache/* | .* | */.* | *.tfstate | *.tfstate.* | *.tfvars) continue ;;
		esac
		printf '%s\0' "$f"
	done >"$tmp/files"
[[ -s "$tmp/files" ]] || { echo "package.sh: no tracked files to package" >&2; exit 1; }
xargs -0 cp --parents -t "$stage" <"$tmp/files"

# Fixed times and a sorted file list: a reproducible archive.
find "$stage" -exec touch -h -t 198001010000 {} +
mkdir -p "$(dirname "$out")"
rm -f "$out"
(cd "$stage" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | zip -q -X -D "$out" -@)

# Build it as the buildpack would, offline: its declarative template
# imports the root package and starts the framework.
check="$tmp/check"
mkdir -p "$check"
(cd "$check" && unzip -q "$out")
for f in go.mod go.sum functions.go functions/register.go; do
	[[ -f "$check/$f" ]] || { echo "package.sh: the archive lacks $f" >&2; exit 1; }
done
mkdir -p "$check/functions.local/app"
cat >"$check/functions.local/app/main.go" <<'EOF'
// The main the Go buildpack generates for declaratively registered functions.
package main

import (
	"log"
	"os"

	_ "github.com/tenantlake/tenantlake"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %v\n", err)
	}
}
EOF
(cd "$check" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$tmp/function" ./functions.local/app) ||
	{ echo "package.sh: the archive does not build the way the Cloud Functions Go buildpack builds it" >&2; exit 1; }

files=$(wc -l <<<"$(unzip -Z1 "$out")")
echo "package.sh: wrote ${out#"$root"/} ($files files, $(wc -c <"$out") bytes, md5 $(md5sum "$out" | cut -d' ' -f1)); it builds as the buildpack builds it"
