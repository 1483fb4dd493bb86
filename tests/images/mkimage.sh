#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Root filesystems of real servers for the probe tests and the bench, built
# from the host's Debian packages without a registry: the server's binary, the
# libraries ldd names, busybox (a shell for CREATE_SH-style commands), and the
# server's data made at build time. tests/runtime-env.sh imports the tar.
#
#   tests/images/mkimage.sh postgres OUT.tar
#       PostgreSQL 15 (postgresql-15): a data directory made by initdb as the
#       host's postgres user (its uid/gid kept in the tar and in the image's
#       /etc/passwd), listening on *:5432, trust auth, fsync off.
#   tests/images/mkimage.sh redis OUT.tar
#       Redis 7 (redis-server) on *:6379, protected-mode off, with /data/dump.rdb
#       of REDIS_KEYS keys (DEBUG POPULATE; default 1500000, about 0.9 s to load
#       here) and `save` configured, so that a SIGTERM saves the data set.
#   tests/images/mkimage.sh cmd KIND
#       prints the --change lines (one per line) the import needs for KIND.
#   tests/images/mkimage.sh key KIND
#       prints what the tar is made from (this script, the server binary's size
#       and time, REDIS_KEYS): a cache of tars names them by its hash.
#
# The tar is written to OUT.tar.tmp and renamed: a failed build leaves no tar.
set -euo pipefail

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly PG_SHARE=/usr/share/postgresql/15
readonly PG_DATA=/var/lib/postgresql/data
readonly REDIS_KEYS=${REDIS_KEYS:-1500000}

die() {
	echo "mkimage: error: $*" >&2
	exit 1
}

# Copies FILE... into ROOT at the same paths, following symlinks, with the
# libraries each one needs (ldd's absolute paths, the loader included).
copy_with_libs() { # root file...
	local root=$1 f lib
	shift
	for f in "$@"; do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
		while read -r lib; do
			[ -e "$root$lib" ] && continue
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done < <(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
	done
}

base_rootfs() { # root
	local root=$1 applet
	mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" \
		"$root/root" "$root/run"
	chmod 1777 "$root/tmp"
	[ -x /bin/busybox ] || die "missing /bin/busybox (Debian package busybox-static)"
	cp /bin/busybox "$root/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
}

build_postgres() { # root tmp
	local root=$1 tmp=$2 uid gid
	[ -x "$PG_BIN/postgres" ] || die "missing $PG_BIN/postgres (Debian package postgresql-15)"
	uid=$(id -u postgres 2>/dev/null) || die "no postgres user on this host (Debian package postgresql-15 makes it)"
	gid=$(id -g postgres)
	base_rootfs "$root"
	copy_with_libs "$root" "$PG_BIN/postgres"
	# plpgsql is in template1; the time zone and its abbreviations are read at start.
	mkdir -p "$root/usr/lib/postgresql/15/lib" "$root$PG_SHARE" "$root/usr/share/zoneinfo/Etc"
	cp /usr/lib/postgresql/15/lib/plpgsql.so "$root/usr/lib/postgresql/15/lib/"
	cp -r "$PG_SHARE/timezonesets" "$root$PG_SHARE/"
	cp -L /usr/share/zoneinfo/UTC "$root/usr/share/zoneinfo/UTC"
	cp -L /usr/share/zoneinfo/Etc/UTC "$root/usr/share/zoneinfo/Etc/UTC"
	echo "postgres:x:$uid:$gid:PostgreSQL:/var/lib/postgresql:/bin/sh" >>"$root/etc/passwd"
	echo "postgres:x:$gid:" >>"$root/etc/group"

	# initdb refuses root: it runs as postgres in a directory it may enter.
	# 1 MB WAL segments instead of 16: a smaller tar to import.
	chmod 0711 "$tmp"
	install -d -o postgres -g postgres -m 0700 "$tmp/data"
	runuser -u postgres -- env TZ=UTC "$PG_BIN/initdb" -D "$tmp/data" -U postgres \
		--auth=trust --locale=C -E UTF8 --no-sync --wal-segsize=1 -L "$PG_SHARE" >"$tmp/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$tmp/initdb.log")"
	cat >>"$tmp/data/postgresql.conf" <<'EOF'
# dozed test image
listen_addresses = '*'
port = 5432
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
EOF
	cat >"$tmp/data/pg_hba.conf" <<'EOF'
local all all trust
host all all 0.0.0.0/0 trust
host all all ::/0 trust
EOF
	mkdir -p "$root/var/lib/postgresql"
	cp -a "$tmp/data" "$root$PG_DATA"
	chown "$uid:$gid" "$root/var/lib/postgresql"
}

build_redis() { # root tmp
	local root=$1 tmp=$2 srv pid i
	srv=$(command -v redis-server) || die "missing redis-server (Debian package redis-server)"
	command -v redis-cli >/dev/null || die "missing redis-cli (Debian package redis-tools)"
	base_rootfs "$root"
	copy_with_libs "$root" "$srv"
	[ "$srv" = /usr/bin/redis-server ] || cp -L "$srv" "$root/usr/bin/redis-server"
	mkdir -p "$root/data" "$root/etc/redis"
	cat >"$root/etc/redis/redis.conf" <<'EOF'
# dozed test image
bind 0.0.0.0
port 6379
protected-mode no
daemonize no
dir /data
dbfilename dump.rdb
# A stop (SIGTERM) saves the data set when a save point is configured.
save 3600 1
appendonly no
EOF
	# The data set, made by a redis of our own on a unix socket only.
	"$srv" --port 0 --unixsocket "$tmp/redis.sock" --dir "$tmp" --dbfilename dump.rdb \
		--save '' --appendonly no --daemonize no --enable-debug-command yes \
		>"$tmp/redis.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || die "redis-server exited: $(tail -n 3 "$tmp/redis.log")"
		sleep 0.05
	done
	# redis-cli exits 0 on an error reply: each answer is checked.
	local r1 r2 r3
	r1=$(redis-cli -s "$tmp/redis.sock" debug populate "$REDIS_KEYS" key 16 2>&1) || true
	r2=$(redis-cli -s "$tmp/redis.sock" set dozed:marker built 2>&1) || true
	r3=$(redis-cli -s "$tmp/redis.sock" save 2>&1) || true
	if [ "$r1 $r2 $r3" != "OK OK OK" ]; then
		kill "$pid" 2>/dev/null
		die "making the data set failed: populate: $r1, set: $r2, save: $r3"
	fi
	redis-cli -s "$tmp/redis.sock" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	cp "$tmp/dump.rdb" "$root/data/dump.rdb"
}

# What each image needs beside its files (import --change).
print_changes() { # kind
	case $1 in
	postgres)
		echo "USER postgres"
		echo "CMD [\"$PG_BIN/postgres\", \"-D\", \"$PG_DATA\"]"
		;;
	redis) echo 'CMD ["/usr/bin/redis-server", "/etc/redis/redis.conf"]' ;;
	*) die "unknown image kind $1 (postgres or redis)" ;;
	esac
}

print_key() { # kind
	local bin
	case $1 in
	postgres) bin=$PG_BIN/postgres ;;
	redis) bin=$(command -v redis-server) || die "missing redis-server (Debian package redis-server)" ;;
	*) die "unknown image kind $1 (postgres or redis)" ;;
	esac
	md5sum <"$0"
	stat -L -c '%n %s %Y' "$bin" || die "missing $bin"
	[ "$1" = redis ] && echo "keys $REDIS_KEYS"
	return 0
}

main() {
	local kind=${1:-} out=${2:-}
	case $kind in
	cmd) print_changes "$out" && return ;;
	key) print_key "$out" && return ;;
	esac
	{ [ -n "$kind" ] && [ -n "$out" ]; } || die "usage: $0 postgres|redis OUT.tar | cmd KIND"
	[ "$(id -u)" -eq 0 ] || die "must run as root (initdb as postgres, file owners in the tar)"
	local tmp
	tmp=$(mktemp -d /tmp/dozed-mkimage.XXXXXX)
	# shellcheck disable=SC2064 # the path now
	trap "rm -rf '$tmp'" EXIT
	case $kind in
	postgres) build_postgres "$tmp/rootfs" "$tmp" ;;
	redis) build_redis "$tmp/rootfs" "$tmp" ;;
	*) die "unknown image kind $kind (postgres or redis)" ;;
	esac
	mkdir -p "$(dirname "$out")"
	tar -C "$tmp/rootfs" --numeric-owner -cf "$out.tmp" .
	mv "$out.tmp" "$out"
}

main "$@"
