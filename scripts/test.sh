#!/usr/bin/env bash
# `make test`: start a throwaway Postgres (fsync off), run every Go test against it, stop it.
# Extra arguments go to `go test`, e.g. scripts/test.sh -run TestWebhooks -v
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

TEST_PG_PORT=${TEST_PG_PORT:-54339}

# shellcheck disable=SC2317 # called by the trap
cleanup() { bash scripts/pg.sh stop test || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DATABASE_URL=$(bash scripts/pg.sh start test "$TEST_PG_PORT" fast)
TEST_DATABASE_URL=$DATABASE_URL
export DATABASE_URL TEST_DATABASE_URL

rc=0
go test -race -count=1 ./... "$@" || rc=$?
exit "$rc"
