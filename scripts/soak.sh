#!/usr/bin/env bash
# `make soak`: the long versions of the reliability tests (docs/RELIABILITY.md)
# against a throwaway Postgres (fsync off): 25 SIGKILLs under load with no
# shortcut for the rescue of stranded jobs, five SIGTERMs under load, five
# Postgres restarts, two replicas with a leader failover, Postgres frozen for
# 45 s, the SIGKILL of one replica of two, and an endpoint down for 2 minutes under
# load whose deliveries come back with the recovery tail's real first step (5 minutes).
# Figures go to
# .data/soak-figures.txt (one line per test run, appended) and to stdout;
# the whole go test -v output to .data/soak.log.
# Extra arguments go to `go test`, e.g. scripts/soak.sh -run TestCrash
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

SOAK_PG_PORT=${SOAK_PG_PORT:-54341}

# shellcheck disable=SC2317 # called by the trap
cleanup() { bash scripts/pg.sh stop soak || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DATABASE_URL=$(bash scripts/pg.sh start soak "$SOAK_PG_PORT" fast)
TEST_DATABASE_URL=$DATABASE_URL
BOOHPAY_SOAK=1
mkdir -p .data
BOOHPAY_FIGURES=$(pwd)/.data/soak-figures.txt
export DATABASE_URL TEST_DATABASE_URL BOOHPAY_SOAK BOOHPAY_FIGURES

run='^(TestCrashSIGKILLUnderLoad|TestSIGTERMUnderLoad|TestPostgresRestartUnderLoad|TestTwoReplicasOneDatabase|TestPostgresFrozenUnderLoad|TestReplicaSIGKILLUnderLoad|TestEndpointOutageRecoveredByTheTail)$'
start=$SECONDS
lines_before=$( { wc -l <"$BOOHPAY_FIGURES"; } 2>/dev/null || echo 0)
set +e
go test -race -count=1 -timeout 60m -v -run "$run|^TestDeliveryRetryScheduleIsPunctual\$" "$@" ./cmd/boohpay/ ./jobs/ 2>&1 | tee .data/soak.log
rc=${PIPESTATUS[0]}
set -e
echo "soak: go test took $((SECONDS - start))s (exit $rc)" >&2
echo "soak: figures (also in $BOOHPAY_FIGURES):" >&2
tail -n +"$((lines_before + 1))" "$BOOHPAY_FIGURES" 2>/dev/null || true
exit "$rc"
