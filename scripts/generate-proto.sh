#!/usr/bin/env bash
# Regenerates the Go code of the plugin protocol from sdk/proto. Installs
# protoc (Debian's protobuf-compiler) if missing and the pinned Go plugins
# into bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null; then
	echo "installing protoc (protobuf-compiler)" >&2
	sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get update -qq && $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi
GOBIN="$PWD/bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN="$PWD/bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
export PATH="$PWD/bin:$PATH"
cd sdk/proto
for f in $(find . -name '*.proto' | sort); do
	protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative "$f"
done
