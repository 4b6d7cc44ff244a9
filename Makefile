# Developer entry points. CI runs .ci/run, which calls these same targets.
TOOL := go tool -modfile=tools/go.mod
GEN := api/gen command/gen cluster/gen
# Every module but the root one, from the tracked go.mod files: bench/ (its
# own module so that etcd stays out of the product's build list) and tools/
# (build tools only; it holds no packages and is skipped).
OTHER_MODULES := $(patsubst %/go.mod,%,$(shell git ls-files '*/go.mod'))

.PHONY: generate checkgenerate lint test test-short buf-lint buf-breaking modules check-large-files

generate:
	rm -rf $(GEN)
	$(TOOL) buf generate

# Fails when the committed generated code differs from a fresh generate.
checkgenerate: generate
	@test -z "$$(git status --porcelain -- $(GEN))" || \
	  { git status --porcelain -- $(GEN); echo "generated code is stale: run make generate and commit"; exit 1; }

buf-lint:
	$(TOOL) buf lint
	$(TOOL) buf format --diff --exit-code

# Compares the schemas with main (on another branch) or with the previous
# commit (on main), with each module's rules in buf.yaml: the public API at
# FILE level, the log and peer schemas at WIRE level.
buf-breaking:
	@against=""; branch=$$(git rev-parse --abbrev-ref HEAD); \
	if [ "$$branch" != main ] && git rev-parse -q --verify main >/dev/null; then against=".git#branch=main"; \
	elif git rev-parse -q --verify HEAD~1 >/dev/null; then against=".git#ref=HEAD~1"; fi; \
	if [ -z "$$against" ]; then echo "no earlier commit to compare against"; exit 0; fi; \
	echo "buf breaking --against $$against"; \
	$(TOOL) buf breaking --against "$$against"

# The root module; `make modules` covers the others.
lint:
	go vet ./...
	$(TOOL) golangci-lint run ./...

# The README's test command.
test:
	go test -race -count=1 ./...

# The quick loop: skips what checks testing.Short (multi-node clusters
# through the API, the process and documentation tests).
test-short:
	go test -short -count=1 ./...

# vet, lint and test every module other than the root one.
modules:
	@set -e; for m in $(OTHER_MODULES); do \
	  if [ -z "$$(cd $$m && go list ./... 2>/dev/null)" ]; then echo "== $$m: no packages to vet, lint or test"; continue; fi; \
	  echo "== $$m: go vet, golangci-lint, go test"; \
	  (cd $$m && go vet ./... && go tool -modfile=$(CURDIR)/tools/go.mod golangci-lint run ./... && go test -count=1 ./...); \
	done

# No tracked file over 1 MB unless .ci/large-files.allow lists it.
check-large-files:
	.ci/check-large-files
