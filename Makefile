SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# staticcheck 2026.2.2 (module version v0.8.2): the newest release, supports Go 1.26.
# Only semver versions resolve through the module proxy, so pin v0.x.y, not 2026.x.y.
STATICCHECK_VERSION := v0.8.2

.PHONY: run test build lint clean soak bench

## run: local Postgres (unless DATABASE_URL is set) + migrations + demo merchant + serve on :3000
run:
	bash scripts/run.sh

## test: every Go test, with -race, against a throwaway Postgres (extra go test flags: make test ARGS='-run X -v')
test:
	bash scripts/test.sh $(ARGS)

## soak: the long crash, shutdown, Postgres restart and replica tests (docs/RELIABILITY.md), own Postgres
soak:
	bash scripts/soak.sh $(ARGS)

## bench: performance against baselines from the same run, own Postgres (docs/BENCHMARKS.md; QUICK=1: under 3 minutes)
bench: build
	go run ./bench $(if $(QUICK),-quick) $(ARGS)

## build: bin/boohpay, stamped with its commit for `boohpay version` (the Dockerfile runs the same command)
build:
	go build -buildvcs=auto -o bin/boohpay ./cmd/boohpay

## lint: gofmt, go vet, staticcheck
lint:
	@unformatted=$$(find . \( -path ./.data -o -path ./bin -o -path ./.git -o -path ./node_modules \) -prune \
		-o -name '*.go' -type f -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting (gofmt -w):"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## clean: stop and delete the local Postgres instances, remove build output
clean:
	@for d in .data/*/; do \
		if [ -d "$$d" ]; then bash scripts/pg.sh destroy "$$(basename "$$d")"; fi; \
	done
	rm -rf bin .data
