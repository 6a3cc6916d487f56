#!/usr/bin/env bash
# `make run`: local Postgres (unless DATABASE_URL is set), build, migrate, demo merchant, serve.
# RUN_PG_PORT picks the local Postgres's port (default 54329).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

log() { echo "run.sh: $*" >&2; }

local_pg=""
if [ -z "${DATABASE_URL:-}" ]; then
	pg_port=${RUN_PG_PORT:-54329}
	log "starting a local Postgres on 127.0.0.1:$pg_port (another port: RUN_PG_PORT=NNNNN make run; your own database: DATABASE_URL=...)"
	if ! DATABASE_URL=$(bash scripts/pg.sh start run "$pg_port"); then
		log "could not start the local Postgres on port $pg_port: if the port is taken, run RUN_PG_PORT=NNNNN make run"
		exit 1
	fi
	local_pg=1
fi
export DATABASE_URL

# A cold machine downloads every module and compiles every dependency
# before the first line of our own code: minutes with nothing on screen
# unless we say so. GOPROXY=off succeeds only when every module is cached.
if ! GOPROXY=off go mod download >/dev/null 2>&1; then
	log "downloading Go modules (first run on this machine; this can take a few minutes)..."
	go mod download -x 2>&1 | grep --line-buffered '^# get .*\.zip$' |
		sed -u -e 's|^# get [a-z]*://[^/]*/||' -e 's|/@v/| |' -e 's|\.zip$||' -e 's|^|run.sh:   |' >&2 || true
	go mod download # again, plainly: its errors, if any, are the ones to show
fi
if [ -x bin/boohpay ]; then
	log "building bin/boohpay..."
else
	log "building bin/boohpay (the first build compiles every dependency: a minute or two on a cold machine)..."
fi
go build -buildvcs=auto -o bin/boohpay ./cmd/boohpay
log "built $(bin/boohpay version)"

log "applying migrations"
bin/boohpay migrate up

# The demo merchant lives in the database, so make a new one when the database changed:
# another DATABASE_URL, or a local cluster that was re-initialized since the file was written.
mkdir -p .data
merchant_file=.data/demo-merchant.json
url_file=.data/demo-merchant.dburl
if [ -f "$merchant_file" ]; then
	if [ "$(cat "$url_file" 2>/dev/null || true)" != "$DATABASE_URL" ] ||
		{ [ -n "$local_pg" ] && [ .data/run/PG_VERSION -nt "$merchant_file" ]; }; then
		log "database changed since $merchant_file was written; creating a new demo merchant"
		rm -f -- "$merchant_file"
	fi
fi
if [ ! -s "$merchant_file" ]; then
	log "creating the demo merchant"
	tmp=$(mktemp .data/demo-merchant.XXXXXX)
	if ! bin/boohpay merchant create --name "Demo Merchant" >"$tmp"; then
		rm -f -- "$tmp"
		exit 1
	fi
	mv -f -- "$tmp" "$merchant_file"
	chmod 600 "$merchant_file"
	printf '%s\n' "$DATABASE_URL" >"$url_file"
fi

api_key=$(grep -o '"api_key"[[:space:]]*:[[:space:]]*"[^"]*"' "$merchant_file" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/' || true)
[ -n "$api_key" ] || {
	log "could not read api_key from $merchant_file; delete it and retry"
	exit 1
}

HTTP_ADDR=${HTTP_ADDR:-:3000}
port=${HTTP_ADDR##*:}
{
	echo
	echo "  BoohPay demo merchant (saved in $merchant_file)"
	echo "    API key:  $api_key"
	echo "    try:      curl -H \"Authorization: Bearer $api_key\" http://localhost:${port:-3000}/v1/payments"
	if [ -n "$local_pg" ]; then
		echo "    database: $DATABASE_URL  (stop it: scripts/pg.sh stop run; wipe it: make clean)"
	fi
	echo
} >&2

exec env HTTP_ADDR="$HTTP_ADDR" WEBHOOK_ALLOW_PRIVATE_NETWORKS="${WEBHOOK_ALLOW_PRIVATE_NETWORKS:-true}" bin/boohpay serve
