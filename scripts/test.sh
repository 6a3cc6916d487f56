#!/usr/bin/env bash
# `make test`: install the test tools, start a throwaway Postgres (fsync off),
# run every Go test with -race against it, then each fuzz target briefly
# (FUZZTIME, default 5000x: an execution count, not a duration: Go 1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" when a
# duration runs out while a starved worker is mid-call, golang/go#75804,
# fixed in Go 1.27), and stop Postgres.
# Extra arguments go to `go test` and skip the fuzz pass, e.g.
#   scripts/test.sh -run TestWebhooks -v
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

TEST_PG_PORT=${TEST_PG_PORT:-54339}

# shellcheck disable=SC2317 # called by the trap
cleanup() { bash scripts/pg.sh stop test || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/test-tools.sh
# The pinned promtool test-tools.sh built, ahead of any other on the machine.
PATH="$PWD/.data/tools/bin:$PATH"
export PATH

DATABASE_URL=$(bash scripts/pg.sh start test "$TEST_PG_PORT" fast)
TEST_DATABASE_URL=$DATABASE_URL
export DATABASE_URL TEST_DATABASE_URL

start=$SECONDS
go test -race -count=1 ./... "$@"
echo "test: go test took $((SECONDS - start))s" >&2

if [ $# -eq 0 ]; then
	# Every fuzz target in the tree, found by name, run on top of its committed seeds.
	for pkg in $(go list ./...); do
		for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
			echo "test: fuzzing $pkg $target for ${FUZZTIME:-5000x}" >&2
			go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-5000x}"
		done
	done
fi
