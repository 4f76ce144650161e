# Edulure platform kernel. `make` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
export GOFLAGS := -buildvcs=false

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_\/-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install what the project needs on a fresh machine (PostgreSQL server binaries; Chromium and axe-core for the console's browser tests)
	@./scripts/ensure-postgres.sh
	@./scripts/ensure-chromium.sh
	@./scripts/ensure-axe.sh >/dev/null

.PHONY: build
build: ## Build the edulure binary into bin/
	$(GO) build -o $(BIN)/edulure ./cmd/edulure

.PHONY: plugins
plugins: ## Build every plugin (plugins/*, examples/*: each its own module) into bin/plugins/
	@mkdir -p $(BIN)/plugins
	@for d in plugins/*/ examples/*/; do \
		if [ -f $$d/go.mod ]; then n=$$(basename $$d); echo "building plugin $$n ($${d%/}, its own module)"; \
			(cd $$d && $(GO) build -trimpath -o ../../$(BIN)/plugins/$$n .) || exit 1; fi; \
	done

.PHONY: run
run: build plugins ## Run a development kernel on :8080 (console at /console/): local Postgres under .data/, demo institution, every plugin loaded
	@./scripts/ensure-postgres.sh
	./$(BIN)/edulure dev

.PHONY: test
test: deps ## Run every test (Go, Rego) against a throwaway Postgres that is removed afterwards
	$(GO) run ./cmd/withpg -- ./scripts/test-all.sh

.PHONY: fuzz
fuzz: ## Run each fuzz test for 30 s
	$(GO) test ./kernel/internal/httpapi -run '^$$' -fuzz FuzzDecodeBody -fuzztime 30s
	$(GO) test ./kernel/internal/token -run '^$$' -fuzz FuzzVerify -fuzztime 30s
	$(GO) test ./kernel/internal/console -run '^$$' -fuzz FuzzSessionCookie -fuzztime 30s
	cd sdk && $(GO) test . -run '^$$' -fuzz FuzzPage -fuzztime 30s
	cd sdk && $(GO) test ./wire -run '^$$' -fuzz FuzzContract -fuzztime 30s
	cd plugins/courses && $(GO) test ./internal/courses -run '^$$' -fuzz FuzzQuiz -fuzztime 30s
	cd plugins/courses && $(GO) test ./internal/courses -run '^$$' -fuzz FuzzTitleSearch -fuzztime 30s
	cd plugins/courses && $(GO) test ./internal/courses -run '^$$' -fuzz FuzzUnsafeHTML -fuzztime 30s
	cd plugins/messaging && $(GO) test ./internal/messaging -run '^$$' -fuzz FuzzUnsubscribeToken -fuzztime 30s
	cd plugins/messaging && $(GO) test ./internal/messaging -run '^$$' -fuzz FuzzEmoji -fuzztime 30s
	cd plugins/messaging && $(GO) test ./internal/richtext -run '^$$' -fuzz FuzzSanitize -fuzztime 30s
	cd plugins/commerce && $(GO) test ./internal/commerce -run '^$$' -fuzz FuzzWebhookIntake -fuzztime 30s
	cd plugins/telemetry && $(GO) test ./internal/telemetry -run '^$$' -fuzz FuzzParseStatement -fuzztime 30s
	cd plugins/governance && $(GO) test ./internal/governance -run '^$$' -fuzz FuzzDueSlot -fuzztime 30s

.PHONY: bench
bench: ## Measure the kernel against same-run baselines (own Postgres, kernel, plugins; ~12 min, 8 of them the telemetry group seeding 10 million statements): table + bench/results.json
	@./scripts/ensure-postgres.sh
	$(GO) run ./cmd/bench

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l . | tee /dev/stderr)"
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	for d in plugins/*/ examples/*/; do if [ -f $$d/go.mod ]; then (cd $$d && $(GO) vet ./...) || exit 1; fi; done

.PHONY: generate
generate: ## Regenerate the plugin protocol's Go code from sdk/proto (installs protoc if missing)
	./scripts/generate-proto.sh

.PHONY: db/reset
db/reset: ## Delete the development database under .data/ (make run recreates it)
	@# .data/pg is a symlink when the postgres user could not reach .data (root's home): delete its target too
	if [ -L .data/pg ]; then rm -rf "$$(readlink .data/pg)"; fi
	rm -rf .data/pg .data/pg.password
