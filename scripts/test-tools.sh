#!/usr/bin/env bash
# Installs what the tests need beyond Go and Postgres, once per machine:
#   promtool  (Debian's prometheus)  checks /metrics and the alerting rules
#   chromium  (Debian's chromium)    drives the River UI in a real browser
#   standardwebhooks (npm)           verifies a recorded delivery independently
#   @redocly/cli, @seriousme/openapi-schema-validator (npm)
#                                    validate api/openapi.yaml beside kin-openapi
# Idempotent; quiet when everything is there. As a non-root user without the
# Debian packages it says what to install and goes on (those tests then skip
# locally; under CI=true they fail).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

apt_pkgs=()
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
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
