#!/usr/bin/env bash
# Installs what the tests need beyond Go and Postgres, once per clone or machine:
#   promtool  (built from its Go module, pinned, into .data/tools/bin; test.sh
#             puts that first on PATH)  checks /metrics and the alerting rules
#   chromium  (Debian's chromium)    drives the River UI in a real browser
#   standardwebhooks (npm)           verifies a recorded delivery independently
#   @redocly/cli, @seriousme/openapi-schema-validator (npm)
#                                    validate api/openapi.yaml beside kin-openapi
# Idempotent; quiet when everything is there. As a non-root user without the
# Debian packages it says what to install and goes on (those tests then skip
# locally; under CI=true they fail).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

# promtool of Prometheus 3.16 (Go module versions v0.3xx.y are Prometheus
# 3.xx.y); only the one command is built, not a Prometheus server package.
PROMTOOL_VERSION=v0.316.0
tools=.data/tools/bin
if [ "$(cat "$tools/promtool.version" 2>/dev/null)" != "$PROMTOOL_VERSION" ]; then
	echo "test-tools: building promtool $PROMTOOL_VERSION into $tools (once)" >&2
	mkdir -p "$tools"
	GOBIN="$PWD/$tools" go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" >&2
	echo "$PROMTOOL_VERSION" >"$tools/promtool.version"
fi

apt_pkgs=()
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
if ((${#apt_pkgs[@]})); then
	if [ "$(id -u)" -eq 0 ]; then
		echo "test-tools: installing ${apt_pkgs[*]} with apt-get" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >&2
	else
		echo "test-tools: missing ${apt_pkgs[*]}: sudo apt-get install ${apt_pkgs[*]}" >&2
	fi
fi

# Each npm tool dir: its package-lock.json pins what npm ci installs.
for dir_and_module in jobs/testdata/swverify:standardwebhooks api/testdata/openapilint:.bin/redocly; do
	dir=${dir_and_module%%:*}
	if [ ! -e "$dir/node_modules/${dir_and_module#*:}" ]; then
		if command -v npm >/dev/null 2>&1; then
			echo "test-tools: npm ci in $dir" >&2
			(cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
		else
			echo "test-tools: npm is missing: the checks in $dir will not run" >&2
		fi
	fi
done
