#!/usr/bin/env bash
# Runs every module's tests: the kernel, the SDK, and each plugin under plugins/ and
# examples/ (each its own module). make test runs it under cmd/withpg, which provides
# TEST_DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
$GO test -count=1 ./...
(cd sdk && $GO test -count=1 ./...)
for d in plugins/*/ examples/*/; do
	if [ -f "$d/go.mod" ]; then
		echo "== $d"
		(cd "$d" && $GO vet ./... && $GO test -count=1 ./...)
	fi
done
