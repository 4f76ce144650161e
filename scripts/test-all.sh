#!/usr/bin/env bash
# Runs every module's tests: the kernel, the SDK, and each plugin under plugins/ and
# examples/ (each its own module). make test runs it under cmd/withpg, which provides
# TEST_DATABASE_URL.
#
# Every module runs even when an earlier one fails. gotestsum (pinned below) prints each
# package as it finishes and keeps the go test -json stream of each module under
# $TEST_RESULTS (default .test-results/); after the last package comes one summary of the
# whole run: how many tests ran, and each failed test with its output. CI logs keep it.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
GOTESTSUM_VERSION=v1.13.0
RESULTS=${TEST_RESULTS:-.test-results}
rm -rf "$RESULTS" && mkdir -p "$RESULTS" bin
GOBIN="$PWD/bin" $GO install "gotest.tools/gotestsum@$GOTESTSUM_VERSION" || exit 1
GOTESTSUM="$PWD/bin/gotestsum"
RESULTS=$(cd "$RESULTS" && pwd)

failed=()
# run NAME DIR [vet]: test the module in DIR (and vet it first).
run() {
	local name=$1 dir=$2
	echo "== $name ($dir)"
	if [ "${3:-}" = vet ] && ! (cd "$dir" && $GO vet ./...); then
		failed+=("$name: go vet")
	fi
	# Compile first: on a cold build cache, compiling alongside running tests
	# starved them of CPU and ate into their time limits. -exec true builds
	# every test binary without running it.
	(cd "$dir" && $GO build ./... && $GO test -count=1 -exec true ./... >/dev/null) || true
	if ! (cd "$dir" && "$GOTESTSUM" --format pkgname-and-test-fails --hide-summary=all \
		--jsonfile "$RESULTS/$name.json" -- -count=1 -timeout 20m ./...); then
		failed+=("$name: go test")
	fi
}

run kernel .
run sdk sdk
for d in plugins/*/ examples/*/; do
	if [ -f "$d/go.mod" ]; then
		run "$(basename "$d")" "${d%/}" vet
	fi
done

echo
echo "== Summary of every module (go test -json streams in $RESULTS)"
cat "$RESULTS"/*.json > "$RESULTS/all.json.txt"
"$GOTESTSUM" --format pkgname --format-hide-empty-pkg --raw-command -- cat "$RESULTS/all.json.txt"
rm -f "$RESULTS/all.json.txt"
if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "PASSED: every module"
