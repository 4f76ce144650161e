#!/usr/bin/env bash
# Fetch axe-core (the accessibility engine the console's browser tests
# inject into each page) from the npm registry, at a pinned version, into
# .cache/ (ignored). npm checks the package's integrity against the
# registry; the script checks axe.min.js against the hash pinned here.
# It prints the path of axe.min.js.
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_VERSION=4.11.0
AXE_SHA256=e9e5863c33a874f09bc01acd9234b7e3c871479f5eef8802fa582544465e6d01
dir=.cache/axe-core-$AXE_VERSION
if [ -f "$dir/axe.min.js" ] && echo "$AXE_SHA256  $dir/axe.min.js" | sha256sum -c --status; then
	echo "$PWD/$dir/axe.min.js"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
tar -xzf "$tmp/axe-core-$AXE_VERSION.tgz" -C "$tmp"
if ! echo "$AXE_SHA256  $tmp/package/axe.min.js" | sha256sum -c --status; then
	echo "axe-core $AXE_VERSION: axe.min.js does not have the pinned SHA-256 $AXE_SHA256" >&2
	sha256sum "$tmp/package/axe.min.js" >&2
	exit 1
fi
mkdir -p "$dir"
cp "$tmp/package/axe.min.js" "$dir/axe.min.js"
echo "$PWD/$dir/axe.min.js"
