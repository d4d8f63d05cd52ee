#!/usr/bin/env bash
# Fetches axe-core (the accessibility checker the browser tests inject into each page) from the
# npm registry into target/axe/axe.min.js. Nothing else is installed and nothing is built: the
# tarball is unpacked and only the one minified file kept. Re-run to update within major 4.
# Needs npm (Debian: apt-get install -y npm); CI (.ci/run) runs this before the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}/axe"
version="${AXE_VERSION:-4}"
mkdir -p "$target"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$work" && npm pack --silent "axe-core@$version" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work" package/axe.min.js package/package.json
cp "$work/package/axe.min.js" "$target/axe.min.js"
printf 'axe-core %s -> %s/axe.min.js\n' \
  "$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$work/package/package.json")" "$target"
