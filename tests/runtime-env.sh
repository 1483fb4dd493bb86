#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real container runtimes for the runtime client's tests, with everything they
# own under one directory DIR, so that the host is left as it was:
#
#   tests/runtime-env.sh up DIR        start Podman and Docker, import the test image
#   tests/runtime-env.sh down DIR      stop everything up started, remove DIR
#   tests/runtime-env.sh stop DIR RT   stop one runtime's daemon (RT: docker|podman)
#   tests/runtime-env.sh start DIR RT  start it again (same state, same namespaces)
#   tests/runtime-env.sh create DIR RT NAME HOSTPORT [KEY=VALUE...]
#                                      create and start a busybox httpd container,
#                                      port 80 published on 127.0.0.1:HOSTPORT (or -
#                                      for none; PUBLISH_IP=0.0.0.0 for every
#                                      address), with labels; prints its id
#                                      (CREATE_SH="...": that shell command instead)
#   tests/runtime-env.sh rm DIR RT NAME...
#                                      remove containers, quietly, if they exist
#   tests/runtime-env.sh cli DIR RT ARGS...
#                                      run docker/podman ARGS against our daemon
#   tests/runtime-env.sh image DIR RT KIND
#                                      import dozed-test/KIND:latest (KIND: postgres
#                                      or redis, real servers: tests/images/mkimage.sh)
#                                      into RT if it lacks it; the tar is built once,
#                                      in $DOZED_IMAGE_CACHE if set, else DIR/image/
#
# What up makes, per runtime RT:
#   DIR/RT.sock          the Docker Engine API socket (podman system service / dockerd)
#   DIR/RT.pid           the daemon's PID: down stops it by this PID, then ends
#                        what it left behind (shims, conmon) in DIR/cgroup only
#   DIR/RT.log           its log
#   DIR/ns/RT.net        its network namespace: bridges, iptables rules, published
#                        ports (connect to 127.0.0.1:HOSTPORT from inside) live there
#   DIR/ns/RT.mnt        its mount namespace, with tmpfs on /run and /var/lib, so
#                        that /run/netns, /run/containerd, netavark's state and
#                        Podman's /var/lib/containers/cache stay in it
#   DIR/cgroup           the cgroup v2 directory all of it lives under:
#                        daemons-RT/ (the daemon and its helpers) and RT/ (containers)
# The same directory name is used in the cgroup v1 hierarchies (hybrid hosts),
# where runc creates the containers' v1 cgroups; down removes them.
set -euo pipefail

readonly IMAGE=dozed-test/busybox:latest
readonly RUNTIMES="podman docker"
# Seconds to wait for a daemon's socket, and for a daemon to exit on SIGTERM.
readonly START_DEADLINE=60 STOP_DEADLINE=30

die() {
	echo "runtime-env: error: $*" >&2
	exit 1
}

usage() {
	sed -n '4,25p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

need_cmd() { # command, Debian package
	command -v "$1" >/dev/null 2>&1 ||
		die "missing $1 (Debian package $2; 'make deps' installs it)"
}

check_prereqs() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (daemons, namespaces, cgroups)"
	need_cmd podman podman
	need_cmd conmon conmon
	need_cmd runc runc
	need_cmd dockerd docker.io
	need_cmd docker docker.io
	need_cmd containerd containerd
	need_cmd iptables iptables
	need_cmd nsenter util-linux
	need_cmd unshare util-linux
	need_cmd findmnt util-linux
	need_cmd ip iproute2
	need_cmd tar tar
	[ -x /usr/lib/podman/netavark ] || [ -x /usr/libexec/podman/netavark ] ||
		die "missing netavark (Debian package netavark): Podman's network backend"
	[ -x /bin/busybox ] || die "missing /bin/busybox (Debian package busybox-static)"
	if ldd /bin/busybox >/dev/null 2>&1; then
		die "/bin/busybox is dynamically linked: the test image needs busybox-static"
	fi
}

# --- paths -------------------------------------------------------------------

set_dir() {
	[ -n "${1:-}" ] || usage
	case "$1" in
	/run | /run/* | /var/run | /var/run/* | /var/lib | /var/lib/*)
		die "DIR $1 is under /run or /var/lib, which each daemon gets a tmpfs of" ;;
	/*) ;;
	*) die "DIR must be an absolute path, not $1" ;;
	esac
	DIR=${1%/}
	NS=$DIR/ns
	# A unix socket path has at most 107 bytes: DIR/podman.sock must fit.
	[ ${#DIR} -le 90 ] || die "DIR $DIR is too long for the sockets in it (90 bytes at most)"
}

cgroup2_mount() {
	findmnt -rn -t cgroup2 -o TARGET | head -n1
}

# One name per DIR, in the cgroup v2 tree and in every v1 hierarchy.
cgroup_name() {
	echo "dozed-rtenv.$(echo -n "$DIR" | md5sum | cut -c1-10)"
}

sock() { echo "$DIR/$1.sock"; }

rt_cli() { # runtime, args...
	local rt=$1
	shift
	case $rt in
	docker) DOCKER_CONFIG=$DIR/docker-cli docker -H "unix://$(sock docker)" "$@" ;;
	podman) CONTAINERS_CONF=$DIR/podman/containers.conf \
		podman --url "unix://$(sock podman)" "$@" ;;
	*) die "unknown runtime $rt (docker or podman)" ;;
	esac
}

pid_alive() { # pidfile
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1")
	kill -0 "$pid" 2>/dev/null
}

# --- namespaces --------------------------------------------------------------

setup_namespaces() {
	mkdir -p "$NS"
	if ! findmnt -rn -M "$NS" >/dev/null; then
		# A namespace file can only be bound on a mount that does not
		# propagate into that namespace: make DIR/ns a private mount.
		mount --bind "$NS" "$NS"
		mount --make-private "$NS"
	fi
	local rt
	for rt in $RUNTIMES; do
		if ! findmnt -rn -M "$NS/$rt.net" >/dev/null; then
			touch "$NS/$rt.net"
			unshare --net="$NS/$rt.net" ip link set lo up ||
				die "cannot create a network namespace (unshare --net)"
		fi
		if ! findmnt -rn -M "$NS/$rt.mnt" >/dev/null; then
			touch "$NS/$rt.mnt"
			# /run and /var/lib of their own: Podman's image import writes
			# /var/lib/containers/cache whatever its storage root, and the
			# daemons keep state under /run (netns, containerd shims, netavark).
			unshare --mount="$NS/$rt.mnt" --propagation private sh -c \
				'mount -t tmpfs -o mode=0755,size=64m dozed-rtenv-run /run &&
				 mount -t tmpfs -o mode=0755,size=64m dozed-rtenv-varlib /var/lib' ||
				die "cannot create a mount namespace with a private /run and /var/lib (unshare --mount)"
		fi
	done
}

# --- the image ---------------------------------------------------------------

build_image_tar() {
	local root=$DIR/image/rootfs
	[ -s "$DIR/image/busybox.tar" ] && return 0
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/www" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" \
		"$root/dev" "$root/root"
	cp /bin/busybox "$root/bin/busybox"
	local applet
	for applet in $("$root/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
	done
	echo '<html><body>dozed test</body></html>' >"$root/www/index.html"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	tar -C "$root" -cf "$DIR/image/busybox.tar" .
}

# The shell as PID 1 exits on SIGTERM (an httpd as PID 1 would ignore it and
# make every stop wait for its grace period).
readonly IMAGE_CMD='CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM; /bin/httpd -f -p 80 -h /www & wait"]'

import_image() { # runtime
	rt_cli "$1" image inspect "$IMAGE" >/dev/null 2>&1 && return 0
	rt_cli "$1" import -c "$IMAGE_CMD" "$DIR/image/busybox.tar" "$IMAGE" >/dev/null ||
		die "$1: importing $DIR/image/busybox.tar as $IMAGE failed"
}

# The images of real servers: built by tests/images/mkimage.sh, once per
# version of that script and of the server (the hash of its key names the
# tar), under a lock, since the tests import into both runtimes at once.
MKIMAGE=$(dirname "$0")/images/mkimage.sh
readonly MKIMAGE

server_image_tar() { # kind: prints the tar's path, building it if missing
	local kind=$1 cache=${DOZED_IMAGE_CACHE:-$DIR/image} hash tar
	hash=$("$MKIMAGE" key "$kind" | md5sum | cut -c1-12) || exit 1
	tar=$cache/$kind-$hash.tar
	mkdir -p "$cache"
	(
		flock 9
		[ -s "$tar" ] || "$MKIMAGE" "$kind" "$tar" >&2 ||
			die "building the $kind image with $MKIMAGE failed (see above)"
	) 9>"$cache/.$kind.lock" || exit 1
	echo "$tar"
}

cmd_image() {
	set_dir "${1:-}"
	local rt=${2:?runtime (docker or podman)} kind=${3:?image kind (postgres or redis)}
	case $kind in
	postgres | redis) ;;
	*) die "unknown image kind $kind (postgres or redis)" ;;
	esac
	[ -e "$DIR/ready" ] || die "$DIR is not an environment made by '$0 up'"
	local image=dozed-test/$kind:latest tar line
	rt_cli "$rt" image inspect "$image" >/dev/null 2>&1 && return 0
	tar=$(server_image_tar "$kind") || exit 1
	local -a changes=()
	while IFS= read -r line; do
		changes+=(-c "$line")
	done < <("$MKIMAGE" cmd "$kind")
	rt_cli "$rt" import "${changes[@]}" "$tar" "$image" >/dev/null ||
		die "$rt: importing $tar as $image failed"
}

# --- daemons -----------------------------------------------------------------

write_configs() {
	local cg=$1
	mkdir -p "$DIR/podman/tmp" "$DIR/podman/networks" "$DIR/docker/data" \
		"$DIR/docker/exec" "$DIR/docker-cli"
	cat >"$DIR/podman/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
# crun fails on hybrid-cgroup hosts; runc works on both kinds.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$DIR/podman/events.log"
tmp_dir = "$DIR/podman/tmp"

[network]
network_backend = "netavark"
network_config_dir = "$DIR/podman/networks"
EOF
	cat >"$DIR/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/podman/root"
runroot = "$DIR/podman/runroot"
EOF
	# Without it dockerd 20.10 writes its trust key to /etc/docker/key.json.
	cat >"$DIR/docker/daemon.json" <<EOF
{"deprecated-key-path": "$DIR/docker/key.json"}
EOF
	echo "$cg" >"$DIR/cgroup"
}

close_inherited_fds() {
	local fd n
	for fd in "/proc/$BASHPID/fd/"*; do
		n=${fd##*/}
		if [ "$n" -gt 2 ] 2>/dev/null; then
			eval "exec $n>&-" 2>/dev/null || true
		fi
	done
}

# Starts a daemon in its namespaces and cgroup; its PID is the one recorded
# (sh, nsenter and the daemon exec each other).
launch() { # runtime
	local rt=$1 cg
	cg=$(cat "$DIR/cgroup")
	mkdir -p "$cg/daemons-$rt"
	local -a cmd
	case $rt in
	podman)
		cmd=(env CONTAINERS_CONF="$DIR/podman/containers.conf"
			CONTAINERS_STORAGE_CONF="$DIR/podman/storage.conf" TMPDIR="$DIR/podman/tmp"
			podman system service --time=0 "unix://$(sock podman)")
		;;
	docker)
		cmd=(dockerd --config-file "$DIR/docker/daemon.json"
			--data-root "$DIR/docker/data" --exec-root "$DIR/docker/exec"
			--host "unix://$(sock docker)" --pidfile "$DIR/docker/dockerd.pid"
			--exec-opt native.cgroupdriver=cgroupfs
			--cgroup-parent "/$(basename "$cg")/docker")
		;;
	esac
	rm -f "$(sock "$rt")"
	# The daemon outlives us: it must not hold our caller's pipes (a test
	# harness waits for their end), only the log.
	(
		close_inherited_fds
		# shellcheck disable=SC2016 # expanded by the inner shell
		exec setsid sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg/daemons-$rt" \
			nsenter --mount="$NS/$rt.mnt" --net="$NS/$rt.net" -- "${cmd[@]}" \
			</dev/null >>"$DIR/$rt.log" 2>&1
	) &
	echo $! >"$DIR/$rt.pid"
}

wait_ready() { # runtime
	local rt=$1 deadline=$((SECONDS + START_DEADLINE))
	until [ -S "$(sock "$rt")" ] && rt_cli "$rt" version >/dev/null 2>&1; do
		if ! pid_alive "$DIR/$rt.pid"; then
			tail -n 15 "$DIR/$rt.log" >&2 || true
			die "$rt: the daemon exited during start-up; see $DIR/$rt.log (last lines above)"
		fi
		[ $SECONDS -lt $deadline ] ||
			die "$rt: no API on $(sock "$rt") after ${START_DEADLINE}s; see $DIR/$rt.log"
		sleep 0.05
	done
}

stop_daemon() { # runtime
	local rt=$1 pid i
	pid_alive "$DIR/$rt.pid" || return 0
	pid=$(cat "$DIR/$rt.pid")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_DEADLINE * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "runtime-env: $rt (PID $pid) ignored SIGTERM for ${STOP_DEADLINE}s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	fi
	rm -f "$DIR/$rt.pid"
}

# --- subcommands -------------------------------------------------------------

up_failed() {
	local rc=$?
	[ $rc -eq 0 ] && return 0
	echo "runtime-env: up failed, stopping what it started" >&2
	cmd_down "$DIR" || true
	exit $rc
}

cmd_up() {
	set_dir "${1:-}"
	check_prereqs
	local cg2 cg
	cg2=$(cgroup2_mount)
	[ -n "$cg2" ] || die "no cgroup2 filesystem is mounted (needed for the containers' cgroup v2 directories)"
	mkdir -p "$DIR"
	[ -e "$DIR/ready" ] && return 0
	cg=$cg2/$(cgroup_name)
	mkdir -p "$cg"
	# Whatever fails from here on leaves nothing running.
	trap up_failed EXIT
	write_configs "$cg"
	setup_namespaces
	build_image_tar

	local rt
	for rt in $RUNTIMES; do
		pid_alive "$DIR/$rt.pid" || launch "$rt"
	done
	# Both start in parallel; wait for both, then import into both at once.
	for rt in $RUNTIMES; do
		wait_ready "$rt"
	done
	local -A pids=()
	for rt in $RUNTIMES; do
		import_image "$rt" &
		pids[$rt]=$!
	done
	for rt in $RUNTIMES; do
		wait "${pids[$rt]}" || die "$rt: image import failed (see above)"
	done
	touch "$DIR/ready"
	trap - EXIT
}

remove_containers() { # runtime
	local rt=$1 ids
	[ -S "$(sock "$rt")" ] && pid_alive "$DIR/$rt.pid" || return 0
	ids=$(timeout 20 "$0" cli "$DIR" "$rt" ps -aq 2>/dev/null) || return 0
	[ -n "$ids" ] || return 0
	# shellcheck disable=SC2086 # one id per word
	timeout 30 "$0" cli "$DIR" "$rt" rm -f $ids >/dev/null 2>&1 || true
}

remove_cgroup_tree() { # dir: rmdir only, deepest first
	[ -d "$1" ] || return 0
	find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

cmd_down() {
	set_dir "${1:-}"
	[ -d "$DIR" ] || return 0
	local rt cg="" name
	[ -s "$DIR/cgroup" ] && cg=$(cat "$DIR/cgroup")
	for rt in $RUNTIMES; do
		remove_containers "$rt" &
	done
	wait
	for rt in $RUNTIMES; do
		stop_daemon "$rt" &
	done
	wait

	# What the daemons left (shims, conmon, containers) is in our cgroup, and
	# only what they started is there.
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		if [ -e "$cg/cgroup.kill" ]; then
			echo 1 >"$cg/cgroup.kill"
		else
			local pid
			while read -r pid; do
				kill -KILL "$pid" 2>/dev/null || true
			done < <(find "$cg" -name cgroup.procs -exec cat {} +)
		fi
		local i
		for ((i = 0; i < 200; i++)); do
			grep -q 'populated 1' "$cg/cgroup.events" 2>/dev/null || break
			sleep 0.05
		done
	fi

	# Unbinding the namespace files ends the namespaces, and with the mount
	# namespaces every mount the daemons made (overlays, /run tmpfs).
	for rt in $RUNTIMES; do
		umount "$NS/$rt.net" 2>/dev/null || true
		umount "$NS/$rt.mnt" 2>/dev/null || true
	done
	umount "$NS" 2>/dev/null || true

	if [ -n "$cg" ]; then
		name=$(basename "$cg")
		remove_cgroup_tree "$cg"
		local hier
		while read -r hier; do
			remove_cgroup_tree "$hier/$name"
		done < <(findmnt -rn -t cgroup -o TARGET)
	fi

	if findmnt -rn -o TARGET | grep -q "^$DIR\(/\|\$\)"; then
		die "something is still mounted under $DIR; not removing it"
	fi
	rm -rf --one-file-system "$DIR"
}

cmd_stop() {
	set_dir "${1:-}"
	stop_daemon "${2:?runtime (docker or podman)}"
}

cmd_start() {
	set_dir "${1:-}"
	local rt=${2:?runtime (docker or podman)}
	[ -s "$DIR/cgroup" ] || die "$DIR is not an environment made by '$0 up'"
	pid_alive "$DIR/$rt.pid" || launch "$rt"
	wait_ready "$rt"
}

cmd_create() {
	set_dir "${1:-}"
	local rt=${2:?runtime} name=${3:?container name} port=${4:?host port or -}
	shift 4
	local -a args=(run -d --name "$name")
	[ "$port" = - ] || args+=(-p "${PUBLISH_IP:-127.0.0.1}:$port:80")
	local label
	for label in "$@"; do
		args+=(--label "$label")
	done
	# dockerd has a default parent (--cgroup-parent); Podman takes it per container.
	[ "$rt" = podman ] && args+=(--cgroup-parent "/$(basename "$(cat "$DIR/cgroup")")/podman")
	# CREATE_SH: a shell command line to run instead of the image's own.
	local -a cmd=()
	[ -n "${CREATE_SH:-}" ] && cmd=(/bin/sh -c "$CREATE_SH")
	rt_cli "$rt" "${args[@]}" "$IMAGE" "${cmd[@]}"
}

cmd_rm() {
	set_dir "${1:-}"
	local rt=${2:?runtime}
	shift 2
	rt_cli "$rt" rm -f "$@" >/dev/null 2>&1 || true
}

cmd_cli() {
	set_dir "${1:-}"
	local rt=${2:?runtime}
	shift 2
	rt_cli "$rt" "$@"
}

case "${1:-}" in
up) cmd_up "${2:-}" ;;
down) cmd_down "${2:-}" ;;
stop) cmd_stop "${2:-}" "${3:-}" ;;
start) cmd_start "${2:-}" "${3:-}" ;;
create) shift && cmd_create "$@" ;;
rm) shift && cmd_rm "$@" ;;
cli) shift && cmd_cli "$@" ;;
image) cmd_image "${2:-}" "${3:-}" "${4:-}" ;;
*) usage ;;
esac
