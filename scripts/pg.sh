#!/usr/bin/env bash
# Throwaway local PostgreSQL for development and tests.
#
#   scripts/pg.sh start NAME PORT [fast]   start (initdb if needed) .data/NAME on 127.0.0.1:PORT
#                                          and print its URL (the only thing written to stdout)
#   scripts/pg.sh stop NAME                stop it if it is running (quiet otherwise)
#   scripts/pg.sh url NAME PORT            print the URL only
#   scripts/pg.sh destroy NAME             stop it and delete its data (used by `make clean`)
#
# `fast` turns off fsync, synchronous_commit and full_page_writes: for test instances only.
#
# Works as a normal user (Postgres runs as you) and as root (Postgres refuses root, so it runs as
# the `postgres` user; if that user cannot reach .data/NAME, e.g. the clone is under /root, the
# data lives in /var/tmp/boohpay-pg/<hash>-NAME and .data/NAME is a symlink to it).
# If the server binaries are missing, root installs them with apt-get.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
DATA_ROOT="$REPO_ROOT/.data"
SHARED_ROOT=/var/tmp/boohpay-pg
PG_LIB_ROOT=${PG_LIB_ROOT:-/usr/lib/postgresql}
PG_OS_USER=postgres

log() { echo "pg.sh: $*" >&2; }
die() {
	echo "pg.sh: error: $*" >&2
	exit 1
}

usage() {
	cat >&2 <<'EOF'
usage: scripts/pg.sh start NAME PORT [fast]
       scripts/pg.sh stop NAME
       scripts/pg.sh url NAME PORT
       scripts/pg.sh destroy NAME
EOF
	exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

check_name() {
	[[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad instance name '$1' (use letters, digits, _ . -)"
}

check_port() {
	if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
		die "bad port '$1'"
	fi
}

url_for() { echo "postgres://postgres@127.0.0.1:$1/postgres?sslmode=disable"; }

# --- server binaries ---------------------------------------------------------------------------

PG_BIN=""

# find_pg_bin [MAJOR]: set PG_BIN to a directory holding initdb, pg_ctl and postgres.
# With MAJOR (from an existing data dir's PG_VERSION), prefer that version's binaries.
find_pg_bin() {
	local want=${1:-} d initdb
	PG_BIN=""
	if [ -n "$want" ] && [ -x "$PG_LIB_ROOT/$want/bin/pg_ctl" ] && [ -x "$PG_LIB_ROOT/$want/bin/postgres" ]; then
		PG_BIN="$PG_LIB_ROOT/$want/bin"
		return 0
	fi
	if initdb=$(command -v initdb 2>/dev/null); then
		d=$(dirname -- "$(readlink -f -- "$initdb")")
		if [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			PG_BIN=$d
			return 0
		fi
	fi
	# Newest version installed under /usr/lib/postgresql/*/bin (Debian layout).
	d=$(find "$PG_LIB_ROOT" -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$d" ]; then
		d=$(dirname -- "$d")
		if [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			PG_BIN=$d
			return 0
		fi
	fi
	return 1
}

ensure_pg_bin() {
	find_pg_bin "${1:-}" && return 0
	if ! is_root; then
		die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them (Debian: sudo apt-get install -y postgresql) or run as root"
	fi
	command -v apt-get >/dev/null 2>&1 || die "PostgreSQL server binaries not found and apt-get is not available; install PostgreSQL 15+ by hand"
	log "PostgreSQL server binaries not found; installing with apt-get (postgresql)"
	{
		DEBIAN_FRONTEND=noninteractive apt-get update &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
	} >&2 || die "apt-get install postgresql failed"
	find_pg_bin "${1:-}" || die "installed postgresql but still cannot find initdb/pg_ctl under $PG_LIB_ROOT/*/bin"
}

# --- running as the right user -----------------------------------------------------------------

# The OS user that owns and runs the cluster: root -> postgres; otherwise ourselves.
ensure_pg_user() {
	is_root || return 0
	if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
		log "creating system user '$PG_OS_USER'"
		useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
			--shell /bin/bash "$PG_OS_USER" >&2 || die "could not create user '$PG_OS_USER'"
	fi
}

# as_user USER CMD...: run CMD as USER (root only), from / so an unreadable cwd does not matter.
as_user() {
	local user=$1
	shift
	if command -v runuser >/dev/null 2>&1; then
		(cd / && runuser -u "$user" -- "$@" 9>&-)
	else
		# shellcheck disable=SC2016 # expanded by the inner shell
		(cd / && su -s /bin/sh -c 'exec "$0" "$@"' "$user" -- "$@" 9>&-)
	fi
}

# as_pg CMD...: run CMD as the cluster's OS user (as-is when not root).
as_pg() {
	if is_root; then
		as_user "$PG_RUN_USER" "$@"
	else
		(cd / && "$@" 9>&-)
	fi
}

PG_RUN_USER=$PG_OS_USER

# pick_run_user DIR: as root, run pg_ctl as the owner of an existing data dir (postgres normally,
# or the user who created it when it was made by a non-root run).
pick_run_user() {
	PG_RUN_USER=$PG_OS_USER
	if is_root && [ -d "$1" ]; then
		local owner
		owner=$(stat -c %U -- "$1" 2>/dev/null || echo "$PG_OS_USER")
		if [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
			PG_RUN_USER=$owner
		fi
	fi
}

user_can_write() { # USER DIR
	# shellcheck disable=SC2016 # expanded by the inner shell
	as_user "$1" sh -c 'test -d "$1" && test -w "$1" && test -x "$1"' sh "$2" 2>/dev/null
}

# --- data directory ----------------------------------------------------------------------------

shared_dir_for() { # NAME -> /var/tmp/boohpay-pg/<hash of repo path>-NAME
	local h
	h=$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-12)
	echo "$SHARED_ROOT/$h-$1"
}

# is_ours PATH: PATH is a data dir this script may delete (under .data/ or the shared root).
is_ours() {
	case "$1" in
	"$DATA_ROOT"/?* | "$SHARED_ROOT"/?*) return 0 ;;
	*) return 1 ;;
	esac
}

is_running() { # DATADIR -> 0 if a postmaster is running on it
	[ -f "$1/postmaster.pid" ] || return 1
	as_pg "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1
}

port_of_running() { # DATADIR -> port from postmaster.pid (line 4)
	sed -n '4p' "$1/postmaster.pid" 2>/dev/null || true
}

port_in_use() { # PORT -> 0 if something accepts connections on 127.0.0.1:PORT
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

wipe_dir() { # DIR: empty it (throwaway data only)
	is_ours "$1" || die "refusing to delete '$1'"
	find "$1" -mindepth 1 -delete
}

# prepare_datadir NAME -> sets DATADIR (the real, resolved directory) ready for initdb/start.
prepare_datadir() {
	local name=$1 link="$DATA_ROOT/$1" real
	mkdir -p -- "$DATA_ROOT"

	if ! is_root; then
		if [ -L "$link" ] && [ ! -w "$(readlink -f -- "$link")" ]; then
			die "$link points to $(readlink -f -- "$link"), which was set up by root and is not writable by $(id -un); run 'sudo make clean' or use another name"
		fi
		mkdir -p -- "$link" || die "cannot create $link"
		DATADIR=$(readlink -f -- "$link")
		[ -O "$DATADIR" ] || die "$DATADIR is not owned by $(id -un) (made by root?); remove it (sudo make clean) and retry"
		chmod 700 -- "$DATADIR"
		return 0
	fi

	ensure_pg_user
	if [ -L "$link" ]; then
		real=$(readlink -f -- "$link") || real=""
		[ -n "$real" ] || real=$(readlink -- "$link")
		is_ours "$real" || die "$link is a symlink to $real, outside $SHARED_ROOT; remove it"
		mkdir -p -- "$real"
	elif [ -d "$link" ]; then
		real=$link
		if ! user_can_write "$PG_OS_USER" "$real" && [ "$(stat -c %U -- "$real")" = root ]; then
			chown "$PG_OS_USER:" -- "$real"
		fi
		if ! user_can_write "$(stat -c %U -- "$real")" "$real" && [ ! -f "$real/PG_VERSION" ]; then
			# Empty or half-made and unreachable by postgres: move it to the shared location.
			rm -rf -- "$real"
			real=""
		fi
	else
		real=""
	fi

	if [ -z "$real" ]; then
		mkdir -p -- "$link"
		chown "$PG_OS_USER:" -- "$link"
		chmod 700 -- "$link"
		if user_can_write "$PG_OS_USER" "$link"; then
			real=$link
		else
			rmdir -- "$link"
			real=$(shared_dir_for "$name")
			log "user '$PG_OS_USER' cannot reach $link; keeping the data in $real (symlinked)"
			mkdir -p -- "$SHARED_ROOT"
			chown root: -- "$SHARED_ROOT"
			chmod 755 -- "$SHARED_ROOT"
			if [ -d "$real" ] && [ -n "$(ls -A -- "$real")" ]; then
				# Left over from an earlier clone at this path (or from before `make clean`):
				# the symlink is gone, so nothing refers to it any more. Start afresh.
				local keep_bin=$PG_BIN
				find_pg_bin "$(cat "$real/PG_VERSION" 2>/dev/null || true)" || true
				if [ -n "$PG_BIN" ]; then
					pick_run_user "$real"
					if is_running "$real"; then
						log "stopping a stale server left on $real"
						as_pg "$PG_BIN/pg_ctl" stop -D "$real" -m fast -w >&2 || true
					fi
				fi
				PG_BIN=$keep_bin
				log "discarding stale data in $real"
				wipe_dir "$real"
			fi
			mkdir -p -- "$real"
			ln -s -- "$real" "$link"
		fi
	fi

	DATADIR=$(readlink -f -- "$real")
	if [ "$(stat -c %U -- "$DATADIR")" = root ]; then
		chown -R "$PG_OS_USER:" -- "$DATADIR"
	fi
	chmod 700 -- "$DATADIR"
	pick_run_user "$DATADIR"
	user_can_write "$PG_RUN_USER" "$DATADIR" || die "user '$PG_RUN_USER' cannot write $DATADIR"
}

write_conf() { # DATADIR PORT FAST
	local conf="$1/boohpay.conf" tmp="$1/.boohpay.conf.tmp"
	{
		echo "# Written by scripts/pg.sh on every start; edits are overwritten."
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $2"
		echo "unix_socket_directories = ''"
		echo "max_connections = 400"
		echo "shared_buffers = 256MB"
		if [ "$3" = fast ]; then
			echo "fsync = off"
			echo "synchronous_commit = off"
			echo "full_page_writes = off"
		fi
	} >"$tmp"
	chmod 600 "$tmp"
	is_root && chown "$PG_RUN_USER:" "$tmp"
	mv -f -- "$tmp" "$conf"
	if ! grep -q "^include_if_exists = 'boohpay.conf'" "$1/postgresql.conf"; then
		printf "\n# Local settings for BoohPay (scripts/pg.sh)\ninclude_if_exists = 'boohpay.conf'\n" >>"$1/postgresql.conf"
	fi
}

pick_locale() {
	if command -v locale >/dev/null 2>&1 && locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
		echo C.UTF-8
	else
		echo C
	fi
}

# --- commands ----------------------------------------------------------------------------------

lock() { # NAME: serialize concurrent runs on one instance
	command -v flock >/dev/null 2>&1 || return 0
	mkdir -p -- "$DATA_ROOT"
	exec 9>"$DATA_ROOT/.$1.lock"
	flock 9
}

cmd_start() {
	local name=$1 port=$2 mode=${3:-}
	check_name "$name"
	check_port "$port"
	case "$mode" in "" | fast) ;; *) die "third argument must be 'fast' or nothing, got '$mode'" ;; esac
	lock "$name"

	local existing=""
	[ -f "$DATA_ROOT/$name/PG_VERSION" ] && existing=$(cat "$DATA_ROOT/$name/PG_VERSION")
	ensure_pg_bin "$existing"
	prepare_datadir "$name"

	if is_running "$DATADIR"; then
		local running_port
		running_port=$(port_of_running "$DATADIR")
		if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
			log "'$name' is already running, on port $running_port (not $port); using it"
			port=$running_port
		else
			log "'$name' is already running on 127.0.0.1:$port ($DATADIR)"
		fi
		url_for "$port"
		return 0
	fi

	if port_in_use "$port"; then
		die "port $port on 127.0.0.1 is already in use by another process (not the '$name' instance in $DATADIR); stop it or pick another port"
	fi

	local version
	version=$("$PG_BIN/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
	if [ -f "$DATADIR/PG_VERSION" ]; then
		if [ "$(cat "$DATADIR/PG_VERSION")" != "$version" ]; then
			die "$DATADIR was made by PostgreSQL $(cat "$DATADIR/PG_VERSION") but the server found is $version ($PG_BIN); remove it (make clean) and retry"
		fi
	else
		if [ -n "$(ls -A -- "$DATADIR")" ]; then
			log "$DATADIR holds a half-made cluster; discarding it"
			wipe_dir "$DATADIR"
		fi
		local loc out
		loc=$(pick_locale)
		log "initializing '$name' in $DATADIR (PostgreSQL $version, locale $loc)"
		if ! out=$(as_pg "$PG_BIN/initdb" -D "$DATADIR" --auth=trust -U postgres --encoding=UTF8 --locale="$loc" 2>&1); then
			echo "$out" >&2
			die "initdb failed"
		fi
	fi

	write_conf "$DATADIR" "$port" "${mode:-normal}"

	local logfile="$DATADIR/postgres.log" out
	log "starting '$name' on 127.0.0.1:$port${mode:+ ($mode)}; log: $logfile"
	if ! out=$(as_pg "$PG_BIN/pg_ctl" start -D "$DATADIR" -l "$logfile" -w -t 60 2>&1 >/dev/null); then
		[ -z "$out" ] || echo "$out" >&2
		echo "---- last lines of $logfile ----" >&2
		tail -n 30 -- "$logfile" >&2 2>/dev/null || true
		die "could not start PostgreSQL '$name' on port $port"
	fi
	url_for "$port"
}

cmd_stop() {
	local name=$1 link="$DATA_ROOT/$1"
	check_name "$name"
	[ -e "$link" ] || return 0
	local dir
	dir=$(readlink -f -- "$link")
	[ -f "$dir/postmaster.pid" ] || return 0
	find_pg_bin "$(cat "$dir/PG_VERSION" 2>/dev/null || true)" || return 0
	pick_run_user "$dir"
	if is_running "$dir"; then
		log "stopping '$name'"
		as_pg "$PG_BIN/pg_ctl" stop -D "$dir" -m fast -w >/dev/null || die "could not stop '$name' ($dir)"
	fi
}

cmd_destroy() {
	local name=$1 link="$DATA_ROOT/$1" dir
	check_name "$name"
	rm -f -- "$DATA_ROOT/.$name.lock"
	if [ ! -e "$link" ] && [ ! -L "$link" ]; then
		return 0
	fi
	cmd_stop "$name"
	if [ -L "$link" ]; then
		dir=$(readlink -f -- "$link" || true)
		if [ -n "$dir" ] && [ -d "$dir" ] && is_ours "$dir"; then
			rm -rf -- "$dir"
		fi
		rm -f -- "$link"
	else
		rm -rf -- "$link"
	fi
	log "removed '$name'"
}

main() {
	[ $# -ge 1 ] || usage
	local cmd=$1
	shift
	case "$cmd" in
	start)
		if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
		cmd_start "$@"
		;;
	stop)
		[ $# -eq 1 ] || usage
		cmd_stop "$1"
		;;
	url)
		[ $# -eq 2 ] || usage
		check_name "$1"
		check_port "$2"
		url_for "$2"
		;;
	destroy)
		[ $# -eq 1 ] || usage
		cmd_destroy "$1"
		;;
	*) usage ;;
	esac
}

main "$@"
