# Developer entry points. CI runs .ci/run, which calls these same targets.
TOOL := go tool -modfile=tools/go.mod

.PHONY: generate checkgenerate lint test test-short buf-lint buf-breaking

generate:
	rm -rf api/gen fsm/gen cluster/gen
	$(TOOL) buf generate

# Fails when the committed generated code differs from a fresh generate.
checkgenerate: generate
	@test -z "$$(git status --porcelain -- api/gen fsm/gen cluster/gen)" || \
	  { git status --porcelain -- api/gen fsm/gen cluster/gen; echo "generated code is stale: run make generate and commit"; exit 1; }

buf-lint:
	$(TOOL) buf lint
	$(TOOL) buf format --diff --exit-code

lint:
	go vet ./...
	$(TOOL) golangci-lint run ./...

test:
	go test -race -count=1 ./...
