#!/usr/bin/env bash
# xtask/engine-up.sh: install (when missing) and start what the project's jobs and tests
# need on a Debian 12 (bookworm) machine, as root. `up` alone (the "base" component, what
# `cargo xtask build` needs):
#
#   * the default engine, today's Docker: Debian sid's docker.io/docker-cli (>= 28.5),
#     docker-buildx (>= 0.29) and containerd (>= 2.1), unpacked into their own prefix
#     (never installed into the system), with the containerd image store, on
#     unix:///run/buildkit-lib/docker.sock, its own containerd and its own bridge;
#   * a plain-http registry on 127.0.0.1:5000;
#   * local base images: buildkit-local/busybox:latest (linux/amd64 + linux/arm64, built
#     without emulation) and buildkit-local/python:3.11 (Debian bookworm, python3 + venv +
#     pip + binutils).
#
# More, by component (`up second oldest arm64 mariadb buildkit`, or `up all`):
#   second    a second engine of today's release on unix:///run/buildkit-lib/docker2.sock
#             (own containerd, data and exec root), for builds spread over several engines;
#   oldest    the oldest supported engine, Debian trixie's Docker 26.1 / buildx 0.13 /
#             containerd 1.7, on unix:///run/buildkit-lib/docker-oldest.sock, with the base
#             images (and the BuildKit image when `buildkit` is also asked);
#   arm64     arm64 emulation (qemu-user-static through binfmt_misc);
#   mariadb   buildkit-local/mariadb:10.11 (Debian bookworm's MariaDB 10.11, listening on
#             127.0.0.1 only). Start it with
#               docker run -d --network host -e MARIADB_PORT=PORT -e MARIADB_ROOT_PASSWORD=... \
#                 -e MARIADB_DATABASE=... -e MARIADB_USER=... -e MARIADB_PASSWORD=... \
#                 buildkit-local/mariadb:10.11
#             and wait for the log line "mariadb ready on 127.0.0.1:PORT";
#   buildkit  BuildKit builders: buildkitd and buildctl (BuildKit v0.25.2, the version sid's
#             docker.io vendors) built once per machine by xtask/buildkit-build.sh from
#             Debian sid's sources (6-13 min the first time, kept under
#             /var/lib/buildkit-lib/buildkit-current/bin); the image
#             buildkit-local/buildkit:v0.25.2 for buildx's docker-container driver; a CA,
#             server and client certificates; one remote buildkitd on tcp://127.0.0.1:1234
#             with mutual TLS; the base images pushed to the registry as
#             127.0.0.1:5000/buildkit-local/busybox:latest and .../python:3.11.
#
# Usage: engine-up.sh [up [COMPONENT...]|env [ENGINE]|down|versions|status|registry-start|registry-stop|help]
#   up              (default) install what is missing, start what is not running. Idempotent;
#                   a few seconds when everything is already up.
#   env [ENGINE]    print the export lines (stdout, for eval) that point docker clients at
#                   ENGINE (current, the default; oldest; second): DOCKER_HOST, PATH with
#                   the engine's own docker CLI, DOCKER_CONFIG with its own buildx (not for
#                   current, whose buildx is where every docker CLI looks), and the
#                   BUILDKIT_LIB_* variables the tests read.
#   down            stop the remote buildkitd, the registry, every dockerd and containerd
#                   cleanly (data is kept).
#   versions        print what each Debian release's prefix holds (package and version).
#   registry-start  start the registry only (if it is not answering).
#   registry-stop   stop the registry only (waits until the port no longer answers).
#   status          print what is up; exit non-zero if the default engine or the registry
#                   is not.
#
# Everything lives under /var/lib/buildkit-lib (kept between runs), /run/buildkit-lib and
# /var/log/buildkit-lib. Each step prints one line; a failure prints
# "engine-up: FAILED at step <name>" with the tail of the relevant log and exits non-zero.
set -Eeuo pipefail

readonly STATE_DIR=/var/lib/buildkit-lib
readonly RUN_DIR=/run/buildkit-lib
readonly LOG_DIR=/var/log/buildkit-lib

# Engines. Each runs its own dockerd + containerd with its own socket, data and exec root,
# and its own bridge (dockerd 28's built-in BuildKit runs a `RUN` without `--network` on
# the `bridge` network). The binaries come from Debian's archive, unpacked into a prefix
# of their own under $STATE_DIR/engines/<release>/root (never installed into the system,
# so nothing pulls a newer libc onto the machine; the base system's runc is used):
#   current  the default engine, every test and job uses it: Debian sid's docker.io and
#            docker-cli (>= 28.5), docker-buildx (>= 0.29) and containerd (>= 2.1), with
#            the containerd image store on. unix:///run/buildkit-lib/docker.sock
#   second   a second engine of the same release, for builds spread over several engines
#            (one platform each) and merged. unix:///run/buildkit-lib/docker2.sock
#   oldest   the oldest supported engine: Debian trixie's docker.io 26.1, docker-buildx
#            0.13 and containerd 1.7. unix:///run/buildkit-lib/docker-oldest.sock
ENGINE_NAME= ENGINE_LABEL= ENGINE_HOST= ENGINE_RELEASE= ENGINE_BRIDGE= ENGINE_BRIDGE_CIDR=
DOCKERD_DATA_ROOT= DOCKERD_EXEC_ROOT= DOCKERD_PIDFILE= DOCKERD_LOG= DOCKERD_CONFIG=
CONTAINERD_ROOT= CONTAINERD_STATE= CONTAINERD_SOCK= CONTAINERD_CONFIG= CONTAINERD_PIDFILE=
CONTAINERD_LOG= ENGINE_PREFIX=

select_engine() { # select_engine current|second|oldest
    local s
    case $1 in
    current) s= ENGINE_RELEASE=sid ENGINE_BRIDGE=bkl-current ENGINE_BRIDGE_CIDR=10.213.1.1/24 ;;
    second) s=2 ENGINE_RELEASE=sid ENGINE_BRIDGE=bkl-second ENGINE_BRIDGE_CIDR=10.213.2.1/24 ;;
    oldest) s=-oldest ENGINE_RELEASE=trixie ENGINE_BRIDGE=bkl-oldest ENGINE_BRIDGE_CIDR=10.213.3.1/24 ;;
    *) fail "unknown engine '$1' (current, second or oldest)" ;;
    esac
    ENGINE_NAME=$1
    ENGINE_LABEL=" ($1)"
    ENGINE_HOST=unix://$RUN_DIR/docker$s.sock
    ENGINE_PREFIX=$STATE_DIR/engines/$ENGINE_RELEASE/root
    DOCKERD_DATA_ROOT=$STATE_DIR/docker$s
    DOCKERD_EXEC_ROOT=$RUN_DIR/exec$s
    DOCKERD_PIDFILE=$RUN_DIR/dockerd$s.pid
    DOCKERD_LOG=$LOG_DIR/dockerd$s.log
    DOCKERD_CONFIG=$STATE_DIR/daemon$s.json
    CONTAINERD_ROOT=$STATE_DIR/containerd$s
    CONTAINERD_STATE=$RUN_DIR/containerd$s
    CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock
    CONTAINERD_CONFIG=$STATE_DIR/containerd$s.toml
    CONTAINERD_PIDFILE=$RUN_DIR/containerd$s.pid
    CONTAINERD_LOG=$LOG_DIR/containerd$s.log
    export DOCKER_HOST=$ENGINE_HOST
    # The engine's own docker CLI and buildx plugin (through its client config).
    export DOCKER_CONFIG=$STATE_DIR/engines/$ENGINE_RELEASE/docker-config
    export PATH=$STATE_DIR/engines/$ENGINE_RELEASE/bin:$BASE_PATH
}

# What each release must be, and what this set-up was verified with. sid moves: the set-up
# takes what sid has when it runs (never an exact Debian revision), refuses anything older
# than the minimum, and says so when sid has moved past the newest version known to work.
readonly SID_MIN_DOCKER=28.5 SID_MIN_BUILDX=0.29 SID_MIN_CONTAINERD=2.1
readonly SID_KNOWN_DOCKER=28.5 SID_KNOWN_BUILDX=0.29 SID_KNOWN_CONTAINERD=2.1
readonly TRIXIE_MIN_DOCKER=26.1 TRIXIE_MIN_BUILDX=0.13 TRIXIE_MIN_CONTAINERD=1.7

readonly REGISTRY_ADDR=127.0.0.1:5000
readonly REGISTRY_ROOT=$STATE_DIR/registry
readonly REGISTRY_CONFIG=$STATE_DIR/registry.yml
readonly REGISTRY_PIDFILE=$RUN_DIR/registry.pid
readonly REGISTRY_LOG=$LOG_DIR/registry.log

readonly BUSYBOX_IMAGE=buildkit-local/busybox:latest
readonly BUSYBOX_CONTEXT=$STATE_DIR/busybox-context
readonly PYTHON_IMAGE=buildkit-local/python:3.11
readonly PYTHON_ROOTFS=$STATE_DIR/rootfs/python-3.11
readonly PYTHON_ROOTFS_DONE=$STATE_DIR/rootfs/python-3.11.complete

readonly MARIADB_IMAGE=buildkit-local/mariadb:10.11
readonly MARIADB_ROOTFS=$STATE_DIR/rootfs/mariadb-10.11
readonly MARIADB_ROOTFS_DONE=$STATE_DIR/rootfs/mariadb-10.11.complete

# BuildKit builders (see "BuildKit builders" below): binaries built once, kept under the
# engine's data root; one remote buildkitd with mutual TLS.
# BuildKit as sid's docker.io 28.5 vendors it (see xtask/buildkit-build.sh).
readonly BUILDKIT_VERSION=v0.25.2
readonly BUILDKIT_DIR=$STATE_DIR/buildkit
readonly BUILDKIT_BIN=$STATE_DIR/buildkit-current/bin
readonly BUILDKIT_CERTS=$BUILDKIT_DIR/certs
readonly BUILDKIT_IMAGE=buildkit-local/buildkit:$BUILDKIT_VERSION
readonly BUILDKITD_ADDR=127.0.0.1:1234
readonly BUILDKITD_ROOT=$BUILDKIT_DIR/remote-root
readonly BUILDKITD_CONFIG=$BUILDKIT_DIR/buildkitd-remote.toml
readonly BUILDKITD_PIDFILE=$RUN_DIR/buildkitd.pid
readonly BUILDKITD_LOG=$LOG_DIR/buildkitd.log

readonly DEBIAN_MIRROR=http://deb.debian.org/debian
readonly HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
readonly LOCK_FILE=$RUN_DIR/engine-up.lock

export DEBIAN_FRONTEND=noninteractive
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export PATH=$BASE_PATH
unset DOCKER_CONTEXT BUILDX_BUILDER DOCKER_TLS_VERIFY DOCKER_CERT_PATH

APT=(apt-get -q -y -o DPkg::Lock::Timeout=600
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# ---------------------------------------------------------------------------------------
# Output, failure reporting, cleanup.
# ---------------------------------------------------------------------------------------
CURRENT_STEP=init
STEP_LOG=
STEP_OPEN=0
CLEANUPS=()

step() { # step NAME [LOGFILE]
    CURRENT_STEP=$1
    STEP_LOG=${2:-}
    STEP_OPEN=1
    printf 'engine-up: %s... ' "$1"
}

done_step() { # done_step [MESSAGE]
    printf '%s\n' "${1:-ok}"
    STEP_OPEN=0
    STEP_LOG=
}

fail() { # fail MESSAGE [LOGFILE]
    local log=${2:-$STEP_LOG}
    trap - ERR
    [[ $STEP_OPEN == 1 ]] && printf '\n'
    STEP_OPEN=0
    printf 'engine-up: FAILED at step %s: %s\n' "$CURRENT_STEP" "$1" >&2
    if [[ -n $log && -s $log ]]; then
        # Only what was logged since this script's last marker line, long lines cut.
        printf -- '--- last lines of %s ---\n' "$log" >&2
        awk '/^### / { n = 0 } { buf[n++] = $0 } END { s = n > 25 ? n - 25 : 0; for (i = s; i < n; i++) print buf[i] }' \
            "$log" | cut -c1-400 >&2
        printf -- '---\n' >&2
    fi
    exit 1
}

on_err() {
    fail "command failed (exit $1, line $2): $3"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

run_cleanups() {
    local c
    for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
}
trap run_cleanups EXIT

# Run a command with its output appended to the current step's log, stdin closed.
logged() {
    printf '\n### %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$STEP_LOG"
    "$@" >>"$STEP_LOG" 2>&1 </dev/null
}

# Write a file only when its content differs (stdin is the content). Returns 0 if changed.
write_if_changed() {
    local path=$1 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$path"
    return 0
}

pid_alive() { [[ -n ${1:-} && $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null; }

pid_is() { # pid_is PID COMM: the process exists and its command name is COMM
    pid_alive "$1" && [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}

read_pidfile() { [[ -s $1 ]] && tr -dc '0-9' <"$1" || true; }

# Stop a process we started: SIGTERM, wait up to $3 seconds, then SIGKILL.
stop_pid() { # stop_pid PID COMM TIMEOUT
    local pid=$1 comm=$2 timeout=$3 i
    pid_is "$pid" "$comm" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_is "$pid" "$comm" || return 0
        sleep 0.1
    done
    echo "engine-up: $comm (pid $pid) ignored SIGTERM for ${timeout}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_is "$pid" "$comm" || return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# Probes.
# ---------------------------------------------------------------------------------------
docker_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

containerd_answers() {
    [[ -S $CONTAINERD_SOCK ]] && timeout 10 "$ENGINE_PREFIX/usr/bin/ctr" --address "$CONTAINERD_SOCK" version >/dev/null 2>&1
}

registry_answers() {
    curl -fsS --noproxy '*' -m 3 -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

pkg_status() { # pkg_status PKG -> "installed VERSION" or empty
    dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null || true
}

pkg_installed() { [[ $(pkg_status "$1") == installed\ * ]]; }

pkg_at_least() { # pkg_at_least PKG MINVERSION
    local s
    s=$(pkg_status "$1")
    [[ $s == installed\ * ]] && dpkg --compare-versions "${s#installed }" ge "$2"
}

# ---------------------------------------------------------------------------------------
# Step: packages.
# ---------------------------------------------------------------------------------------
APT_UPDATED=0

apt_update() {
    [[ $APT_UPDATED == 1 ]] && return 0
    logged "${APT[@]}" update || fail "apt-get update failed"
    APT_UPDATED=1
}

# While apt installs packages, make sure no maintainer script starts a system-wide
# docker/containerd service (only when the machine has no policy-rc.d of its own).
guard_services() {
    [[ -e /usr/sbin/policy-rc.d ]] && return 0
    printf '#!/bin/sh\n# temporary, from xtask/engine-up.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    CLEANUPS+=("rm -f /usr/sbin/policy-rc.d")
}

# The machine's own packages (Debian 12): what every engine needs. runc is the base
# system's: sid's and trixie's need glibc 2.38.
ensure_packages() {
    step packages "$LOG_DIR/apt.log"
    local need=() p
    for p in runc iproute2 docker-registry busybox-static debootstrap curl ca-certificates \
        util-linux xz-utils; do
        pkg_installed "$p" || need+=("$p")
    done
    # Files an earlier version of this script added (trixie's docker.io installed system-wide).
    rm -f /etc/apt/sources.list.d/buildkit-lib-trixie.list /etc/apt/preferences.d/buildkit-lib-trixie
    if ((${#need[@]} == 0)); then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    apt_update
    guard_services
    logged "${APT[@]}" install --no-install-recommends "${need[@]}" ||
        fail "apt-get install ${need[*]} failed"
    done_step "ok (installed: ${need[*]})"
}

# apt for another Debian release without touching the machine's apt: its own sources list,
# lists and cache, used only to download .deb files.
release_apt() { # release_apt RELEASE apt-get|apt-cache ARGS...
    local d=$STATE_DIR/apt/$1 tool=$2
    shift 2
    "$tool" -q -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=/dev/null \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
        -o APT::Sandbox::User=root "$@"
}

version_lt() { # version_lt A B: A is older than B (dotted numbers)
    [[ $1 != "$2" ]] && [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1) == "$1" ]]
}

major_minor() { sed -E 's/^[0-9]+://; s/^([0-9]+\.[0-9]+).*/\1/' <<<"$1"; }

# The release's packages and the versions they must have: "package min known" (0: any).
release_packages() { # release_packages RELEASE
    case $1 in
    sid)
        echo "docker.io $SID_MIN_DOCKER $SID_KNOWN_DOCKER"
        echo "docker-cli $SID_MIN_DOCKER $SID_KNOWN_DOCKER"
        echo "docker-buildx $SID_MIN_BUILDX $SID_KNOWN_BUILDX"
        echo "containerd $SID_MIN_CONTAINERD $SID_KNOWN_CONTAINERD"
        echo "tini-static 0 0"
        ;;
    trixie)
        echo "docker.io $TRIXIE_MIN_DOCKER $TRIXIE_MIN_DOCKER"
        echo "docker-cli $TRIXIE_MIN_DOCKER $TRIXIE_MIN_DOCKER"
        echo "docker-buildx $TRIXIE_MIN_BUILDX $TRIXIE_MIN_BUILDX"
        echo "containerd $TRIXIE_MIN_CONTAINERD $TRIXIE_MIN_CONTAINERD"
        echo "tini 0 0"
        ;;
    esac
}

release_ok() { # release_ok RELEASE: unpacked and complete
    local root=$STATE_DIR/engines/$1/root
    [[ -f $STATE_DIR/engines/$1/installed.txt && -x $root/usr/sbin/dockerd && -x $root/usr/bin/docker &&
        -x $root/usr/bin/containerd && -x $root/usr/libexec/docker/cli-plugins/docker-buildx ]]
}

# Download the release's engine packages and unpack them into the release's own prefix
# (dpkg-deb -x: nothing is installed into the system, no maintainer script runs, no newer
# libc comes along). Records what was installed in $STATE_DIR/engines/RELEASE/installed.txt.
ensure_release() { # ensure_release RELEASE
    local rel=$1 dir=$STATE_DIR/engines/$1 pkg min known cand mm warn=() names=() f
    step "engine-packages ($rel)" "$LOG_DIR/apt-$rel.log"
    if ! release_ok "$rel"; then
        : >"$STEP_LOG"
        mkdir -p "$STATE_DIR/apt/$rel/lists/partial" "$STATE_DIR/apt/$rel/cache/archives/partial"
        echo "deb $DEBIAN_MIRROR $rel main" >"$STATE_DIR/apt/$rel/sources.list"
        logged release_apt "$rel" apt-get update || fail "apt-get update for Debian $rel failed"
        while read -r pkg min known; do
            cand=$(release_apt "$rel" apt-cache policy "$pkg" 2>>"$STEP_LOG" | awk '/Candidate:/ {print $2}')
            [[ -n $cand && $cand != "(none)" ]] || fail "Debian $rel has no package $pkg"
            mm=$(major_minor "$cand")
            if [[ $min != 0 ]] && version_lt "$mm" "$min"; then
                fail "Debian $rel's $pkg is $cand; this project needs at least $min"
            fi
            if [[ $known != 0 ]] && version_lt "$known" "$mm"; then
                warn+=("$pkg $cand is newer than $known, the newest version this set-up is known to work with")
            fi
            names+=("$pkg")
        done < <(release_packages "$rel")
        rm -rf "$dir/debs" "$dir/root.tmp"
        mkdir -p "$dir/debs" "$dir/root.tmp"
        (cd "$dir/debs" && logged release_apt "$rel" apt-get download "${names[@]}") ||
            fail "downloading ${names[*]} from Debian $rel failed"
        for f in "$dir/debs"/*.deb; do
            logged dpkg-deb -x "$f" "$dir/root.tmp" || fail "cannot unpack $f"
        done
        for f in "$dir/debs"/*.deb; do
            dpkg-deb --show --showformat='${Package} ${Version}\n' "$f"
        done >"$dir/installed.txt.tmp"
        rm -rf "$dir/root"
        mv "$dir/root.tmp" "$dir/root"
        rm -rf "$dir/debs"
        mv "$dir/installed.txt.tmp" "$dir/installed.txt"
    fi
    # The engine's client: its docker CLI on a PATH of its own, its buildx plugin in a
    # client configuration of its own.
    mkdir -p "$dir/bin" "$dir/docker-config/cli-plugins"
    ln -sfn "$dir/root/usr/bin/docker" "$dir/bin/docker"
    ln -sfn "$dir/root/usr/libexec/docker/cli-plugins/docker-buildx" "$dir/docker-config/cli-plugins/docker-buildx"
    "$dir/root/usr/sbin/dockerd" --version >>"$STEP_LOG" 2>&1 ||
        fail "dockerd from Debian $rel does not run on this machine"
    local msg how=ok
    ((${#names[@]} > 0)) || how="already up"
    msg=$(awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}' "$dir/installed.txt")
    ((${#warn[@]} == 0)) || printf '\nengine-up: note: Debian %s moved on: %s\n' "$rel" "$(IFS=';'; echo "${warn[*]}")" >&2
    done_step "$how ($msg)"
}

# The default engine's client for programs that do not use `engine-up.sh env`: its buildx
# plugin where every docker CLI looks (unless the machine has its own there), and its
# docker CLI when the machine has none.
ensure_default_client() {
    local plug=/usr/local/lib/docker/cli-plugins/docker-buildx dir=$STATE_DIR/engines/sid
    mkdir -p "$(dirname "$plug")"
    if [[ -L $plug || ! -e $plug ]]; then
        ln -sfn "$dir/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plug"
    fi
    command -v docker >/dev/null 2>&1 || ln -sfn "$dir/root/usr/bin/docker" /usr/local/bin/docker
}

busybox_arm64_cached() { [[ -s $BUSYBOX_CONTEXT/busybox-arm64 ]]; }

fetch_busybox_arm64() {
    local tmp f
    tmp=$(mktemp -d)
    CLEANUPS+=("rm -rf '$tmp'")
    (cd "$tmp" && logged "${APT[@]}" download busybox-static:arm64) ||
        fail "apt-get download busybox-static:arm64 failed"
    f=$(find "$tmp" -maxdepth 1 -name 'busybox-static_*_arm64.deb' | head -n 1)
    [[ -n $f ]] || fail "busybox-static:arm64 .deb not found after download"
    logged dpkg-deb -x "$f" "$tmp/x"
    mkdir -p "$BUSYBOX_CONTEXT"
    if [[ -f $tmp/x/bin/busybox ]]; then
        install -m 0755 "$tmp/x/bin/busybox" "$BUSYBOX_CONTEXT/busybox-arm64.tmp"
    else
        install -m 0755 "$tmp/x/usr/bin/busybox" "$BUSYBOX_CONTEXT/busybox-arm64.tmp"
    fi
    mv -f "$BUSYBOX_CONTEXT/busybox-arm64.tmp" "$BUSYBOX_CONTEXT/busybox-arm64"
}

# ---------------------------------------------------------------------------------------
# Step: binfmt (arm64 emulation).
# ---------------------------------------------------------------------------------------
ensure_binfmt() {
    step binfmt "$LOG_DIR/binfmt.log"
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    if [[ $(head -n 1 "$entry" 2>/dev/null) == enabled ]] &&
        grep -qx enabled /proc/sys/fs/binfmt_misc/status 2>/dev/null; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        logged mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
            fail "cannot mount binfmt_misc"
    fi
    if ! grep -qx enabled /proc/sys/fs/binfmt_misc/status 2>/dev/null; then
        echo 1 >/proc/sys/fs/binfmt_misc/status
    fi
    logged update-binfmts --enable qemu-aarch64 || fail "update-binfmts --enable qemu-aarch64 failed"
    [[ $(head -n 1 "$entry" 2>/dev/null) == enabled ]] || fail "$entry is not enabled"
    done_step
}

# ---------------------------------------------------------------------------------------
# Step: containerd (a private one, so that dockerd never attaches to a system containerd
# that may own /run/containerd/containerd.sock, and two engines never share one).
# ---------------------------------------------------------------------------------------
write_containerd_config() {
    write_if_changed "$CONTAINERD_CONFIG" <<EOF || true
# Written by xtask/engine-up.sh
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
EOF
}

ensure_containerd() {
    step "containerd$ENGINE_LABEL" "$CONTAINERD_LOG"
    write_containerd_config
    if containerd_answers; then
        done_step "already up"
        return 0
    fi
    local pid i
    pid=$(read_pidfile "$CONTAINERD_PIDFILE")
    if pid_is "$pid" containerd; then
        # Started earlier but not answering (yet): give it time, then give up on it.
        for ((i = 0; i < 100; i++)); do
            containerd_answers && { done_step "ok (was starting)"; return 0; }
            sleep 0.2
        done
        stop_pid "$pid" containerd 10 || fail "containerd (pid $pid) does not answer nor stop"
    fi
    rm -f "$CONTAINERD_PIDFILE"
    mkdir -p "$CONTAINERD_ROOT" "$CONTAINERD_STATE"
    printf '\n### %s: starting containerd\n' "$(date -u +%FT%TZ)" >>"$CONTAINERD_LOG"
    PATH=$ENGINE_PREFIX/usr/bin:$ENGINE_PREFIX/usr/sbin:$BASE_PATH \
        setsid "$ENGINE_PREFIX/usr/bin/containerd" --config "$CONTAINERD_CONFIG" \
        </dev/null >>"$CONTAINERD_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$CONTAINERD_PIDFILE"
    for ((i = 0; i < 300; i++)); do
        containerd_answers && { done_step; return 0; }
        pid_alive "$pid" || fail "containerd exited while starting"
        sleep 0.2
    done
    fail "containerd not answering on $CONTAINERD_SOCK after 60 s"
}

# ---------------------------------------------------------------------------------------
# Step: dockerd.
# ---------------------------------------------------------------------------------------
check_snapshotter() {
    local status
    status=$(docker info --format '{{json .DriverStatus}}' 2>/dev/null || true)
    [[ $status == *io.containerd.snapshotter.v1* ]] ||
        fail "the engine on $ENGINE_HOST does not use the containerd image store (DriverStatus: ${status:-none})" \
            "$DOCKERD_LOG"
}

# The engine's own bridge (no iptables needed): dockerd 28's built-in BuildKit runs a
# `RUN` without `--network` on it, and so does a container on the default network.
ensure_bridge() {
    if ! ip link show "$ENGINE_BRIDGE" >/dev/null 2>&1; then
        logged ip link add "$ENGINE_BRIDGE" type bridge || fail "cannot create the bridge $ENGINE_BRIDGE"
    fi
    if ! ip -4 addr show dev "$ENGINE_BRIDGE" | grep -qF "inet $ENGINE_BRIDGE_CIDR"; then
        logged ip addr add "$ENGINE_BRIDGE_CIDR" dev "$ENGINE_BRIDGE" ||
            fail "cannot give the bridge $ENGINE_BRIDGE the address $ENGINE_BRIDGE_CIDR"
    fi
    logged ip link set "$ENGINE_BRIDGE" up || fail "cannot bring the bridge $ENGINE_BRIDGE up"
}

ensure_dockerd() {
    step "dockerd$ENGINE_LABEL" "$DOCKERD_LOG"
    if docker_answers; then
        check_snapshotter
        done_step "already up"
        return 0
    fi
    local pid i
    pid=$(read_pidfile "$DOCKERD_PIDFILE")
    if pid_is "$pid" dockerd; then
        for ((i = 0; i < 120; i++)); do
            if docker_answers; then
                check_snapshotter
                done_step "ok (was starting)"
                return 0
            fi
            sleep 0.5
        done
        stop_pid "$pid" dockerd 30 || fail "dockerd (pid $pid) does not answer nor stop"
    fi
    # A pidfile naming a dead process (or someone else's) makes dockerd refuse to start.
    rm -f "$DOCKERD_PIDFILE"
    mkdir -p "$DOCKERD_DATA_ROOT" "$DOCKERD_EXEC_ROOT"
    write_if_changed "$DOCKERD_CONFIG" <<'JSON' || true
{
  "features": {
    "containerd-snapshotter": true
  }
}
JSON
    ensure_bridge
    printf '\n### %s: starting dockerd\n' "$(date -u +%FT%TZ)" >>"$DOCKERD_LOG"
    # No iptables rules and no IP forwarding: a container on the engine's bridge reaches
    # nothing beyond this machine; builds that download use --network host.
    PATH=$ENGINE_PREFIX/usr/bin:$ENGINE_PREFIX/usr/sbin:$BASE_PATH \
        setsid "$ENGINE_PREFIX/usr/sbin/dockerd" \
        --config-file "$DOCKERD_CONFIG" \
        --containerd "$CONTAINERD_SOCK" \
        --data-root "$DOCKERD_DATA_ROOT" \
        --exec-root "$DOCKERD_EXEC_ROOT" \
        --pidfile "$DOCKERD_PIDFILE" \
        -H "$ENGINE_HOST" \
        --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --bridge="$ENGINE_BRIDGE" \
        </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    pid=$!
    for ((i = 0; i < 120; i++)); do
        if docker_answers; then
            check_snapshotter
            done_step
            return 0
        fi
        pid_alive "$pid" || fail "dockerd exited while starting"
        sleep 0.5
    done
    fail "dockerd not answering on $ENGINE_HOST after 60 s"
}

# ---------------------------------------------------------------------------------------
# Step: registry.
# ---------------------------------------------------------------------------------------
write_registry_config() {
    write_if_changed "$REGISTRY_CONFIG" <<EOF || true
# Written by xtask/engine-up.sh
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGISTRY_ROOT
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  # Fixed, so upload sessions survive a registry-stop/registry-start (loopback only).
  secret: buildkit-lib-local-registry
EOF
}

find_registry_pids() { # registry processes serving our config, started by anyone
    local d
    for d in /proc/[0-9]*; do
        [[ $(cat "$d/comm" 2>/dev/null) == docker-registry ]] || continue
        tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF "$REGISTRY_CONFIG" && echo "${d#/proc/}"
    done
    return 0
}

start_registry() {
    step registry "$REGISTRY_LOG"
    if registry_answers; then
        done_step "already up"
        return 0
    fi
    local pid i
    pid=$(read_pidfile "$REGISTRY_PIDFILE")
    if pid_is "$pid" docker-registry; then
        for ((i = 0; i < 25; i++)); do
            registry_answers && { done_step "ok (was starting)"; return 0; }
            sleep 0.2
        done
        stop_pid "$pid" docker-registry 10 || true
    fi
    rm -f "$REGISTRY_PIDFILE"
    mkdir -p "$REGISTRY_ROOT"
    write_registry_config
    printf '\n### %s: starting docker-registry\n' "$(date -u +%FT%TZ)" >>"$REGISTRY_LOG"
    setsid docker-registry serve "$REGISTRY_CONFIG" \
        </dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$REGISTRY_PIDFILE"
    for ((i = 0; i < 150; i++)); do
        registry_answers && { done_step; return 0; }
        pid_alive "$pid" || fail "docker-registry exited while starting"
        sleep 0.2
    done
    fail "registry not answering on http://$REGISTRY_ADDR/v2/ after 30 s"
}

stop_registry() {
    step registry-stop "$REGISTRY_LOG"
    local pids pid i stopped=0
    pids="$(read_pidfile "$REGISTRY_PIDFILE") $(find_registry_pids)"
    for pid in $pids; do
        if pid_is "$pid" docker-registry; then
            stop_pid "$pid" docker-registry 10 || fail "docker-registry (pid $pid) does not stop"
            stopped=1
        fi
    done
    rm -f "$REGISTRY_PIDFILE"
    for ((i = 0; i < 50; i++)); do
        registry_answers || break
        sleep 0.2
    done
    registry_answers && fail "something still answers on http://$REGISTRY_ADDR/v2/ (not started by this script)"
    if ((stopped)); then done_step "stopped"; else done_step "already down"; fi
}

# ---------------------------------------------------------------------------------------
# Step: buildx.
# ---------------------------------------------------------------------------------------
ensure_buildx() {
    step "buildx$ENGINE_LABEL" "$LOG_DIR/buildx.log"
    : >"$STEP_LOG"
    logged docker buildx version || fail "the docker CLI does not find the buildx plugin"
    logged docker buildx inspect default || fail "buildx cannot reach the engine's default builder"
    done_step "$(docker buildx version 2>/dev/null | awk '{print $2; exit}')"
}

# ---------------------------------------------------------------------------------------
# Step: busybox image (linux/amd64 + linux/arm64).
# ---------------------------------------------------------------------------------------
# A root file system per platform: the static busybox and one symlink per applet (made
# here, so that building the image needs no emulation).
busybox_rootfs() { # busybox_rootfs BUSYBOX_BINARY DIR
    local applet
    rm -rf "$2"
    mkdir -p "$2/bin"
    install -m 0755 "$1" "$2/bin/busybox"
    while read -r applet; do
        [[ -n $applet && $applet != busybox ]] && ln -s busybox "$2/bin/$applet"
    done < <(/bin/busybox --list)
}

ensure_busybox_image() {
    step "busybox-image$ENGINE_LABEL" "$LOG_DIR/busybox-image.log"
    if image_exists "$BUSYBOX_IMAGE"; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    local amd64=/bin/busybox tmp_tag=buildkit-local/busybox:engine-up-tmp out
    [[ -x $amd64 ]] || fail "static busybox (busybox-static) not found at /bin/busybox"
    if ! busybox_arm64_cached; then
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            logged dpkg --add-architecture arm64
            APT_UPDATED=0
        fi
        apt_update
        fetch_busybox_arm64
    fi
    mkdir -p "$BUSYBOX_CONTEXT"
    busybox_rootfs "$amd64" "$BUSYBOX_CONTEXT/rootfs-amd64"
    busybox_rootfs "$BUSYBOX_CONTEXT/busybox-arm64" "$BUSYBOX_CONTEXT/rootfs-arm64"
    write_if_changed "$BUSYBOX_CONTEXT/Dockerfile" <<'DOCKERFILE' || true
# Written by xtask/engine-up.sh: a static busybox for linux/amd64 and linux/arm64.
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ENV PATH=/bin
CMD ["sh"]
DOCKERFILE
    logged docker buildx build --builder default \
        --platform linux/amd64,linux/arm64 --network none --provenance=false \
        --progress plain -t "$tmp_tag" --load "$BUSYBOX_CONTEXT" ||
        fail "docker buildx build of $BUSYBOX_IMAGE failed"
    out=$(docker run --rm --network none --platform linux/amd64 "$tmp_tag" uname -m 2>>"$STEP_LOG") ||
        fail "linux/amd64 busybox does not run"
    [[ $out == x86_64 ]] || fail "linux/amd64 busybox: uname -m printed '$out'"
    out=$(docker run --rm --network none "$tmp_tag" sh -c 'echo ok' 2>>"$STEP_LOG") ||
        fail "busybox sh/echo do not run"
    [[ $out == ok ]] || fail "busybox sh -c 'echo ok' printed '$out'"
    logged docker tag "$tmp_tag" "$BUSYBOX_IMAGE"
    logged docker rmi "$tmp_tag"
    done_step "ok (linux/amd64, linux/arm64)"
}

# arm64 emulation, proven by the busybox image's linux/arm64 variant.
ensure_arm64() {
    step arm64-packages "$LOG_DIR/apt.log"
    local need=() p out
    for p in qemu-user-static binfmt-support; do pkg_installed "$p" || need+=("$p"); done
    if ((${#need[@]} == 0)); then
        done_step "already up"
    else
        apt_update
        guard_services
        logged "${APT[@]}" install --no-install-recommends "${need[@]}" ||
            fail "apt-get install ${need[*]} failed"
        done_step "ok (installed: ${need[*]})"
    fi
    ensure_binfmt
    step "arm64-run$ENGINE_LABEL" "$LOG_DIR/binfmt.log"
    out=$(docker run --rm --network none --platform linux/arm64 "$BUSYBOX_IMAGE" uname -m 2>>"$STEP_LOG") ||
        fail "linux/arm64 busybox does not run (qemu/binfmt?)"
    [[ $out == aarch64 ]] || fail "linux/arm64 busybox: uname -m printed '$out'"
    done_step "ok (aarch64)"
}
# ---------------------------------------------------------------------------------------
# Step: python image (Debian bookworm rootfs from debootstrap, imported).
# ---------------------------------------------------------------------------------------
remove_rootfs() { # remove_rootfs [DIR [DONE_MARKER]]: unmount what debootstrap left, delete
    local dir=${1:-$PYTHON_ROOTFS} done_marker=${2:-$PYTHON_ROOTFS_DONE} m
    while read -r m; do
        [[ -n $m ]] && umount -l "$m" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true)
    rm -rf --one-file-system "$dir"
    rm -f "$done_marker"
}

# The python image's root file system takes a minute of debootstrap: on a machine that
# has none, it starts in the background when `up` starts, beside the engine's set-up, and
# ensure_python_image waits for it.
PYTHON_ROOTFS_PID=
start_python_rootfs() {
    [[ -f $PYTHON_ROOTFS_DONE && -x $PYTHON_ROOTFS/usr/bin/python3 ]] && return 0
    remove_rootfs
    mkdir -p "$(dirname "$PYTHON_ROOTFS")"
    (
        trap - ERR EXIT
        set +e
        printf '\n### %s: debootstrap (background)\n' "$(date -u +%FT%TZ)" >"$PYTHON_ROOTFS.log"
        debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,binutils,libpython3.11,passwd,ca-certificates \
            bookworm "$PYTHON_ROOTFS" "$DEBIAN_MIRROR" >>"$PYTHON_ROOTFS.log" 2>&1 </dev/null &&
            touch "$PYTHON_ROOTFS_DONE"
    ) 9>&- &
    PYTHON_ROOTFS_PID=$!
    CLEANUPS+=("kill $PYTHON_ROOTFS_PID 2>/dev/null")
}

ensure_python_image() {
    step "python-image$ENGINE_LABEL" "$LOG_DIR/python-image.log"
    if image_exists "$PYTHON_IMAGE"; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    local tmp_tag=buildkit-local/python:engine-up-tmp cached="cached rootfs" ca=/etc/ssl/certs/ca-certificates.crt
    [[ -s $HOST_CA_BUNDLE ]] || fail "host CA bundle $HOST_CA_BUNDLE missing"
    if [[ -n $PYTHON_ROOTFS_PID ]]; then
        # Started at the beginning of `up`, beside the engine's own set-up.
        cached="debootstrap, beside the engine set-up"
        if ! wait "$PYTHON_ROOTFS_PID"; then
            PYTHON_ROOTFS_PID=
            cat "$PYTHON_ROOTFS.log" >>"$STEP_LOG" 2>/dev/null || true
            remove_rootfs
            fail "debootstrap of bookworm failed"
        fi
        PYTHON_ROOTFS_PID=
        cat "$PYTHON_ROOTFS.log" >>"$STEP_LOG" 2>/dev/null || true
    fi
    if [[ ! -f $PYTHON_ROOTFS_DONE || ! -x $PYTHON_ROOTFS/usr/bin/python3 ]]; then
        cached="debootstrap"
        remove_rootfs
        mkdir -p "$(dirname "$PYTHON_ROOTFS")"
        logged debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,binutils,libpython3.11,passwd,ca-certificates \
            bookworm "$PYTHON_ROOTFS" "$DEBIAN_MIRROR" || {
            remove_rootfs
            fail "debootstrap of bookworm failed"
        }
        touch "$PYTHON_ROOTFS_DONE"
    fi
    [[ -x $PYTHON_ROOTFS/usr/sbin/useradd ]] || fail "useradd missing from the python rootfs"
    mkdir -p "$PYTHON_ROOTFS/etc/ssl/certs"
    install -m 0644 "$HOST_CA_BUNDLE" "$PYTHON_ROOTFS$ca"
    # Leave out device nodes, downloaded .debs and apt lists (a Dockerfile runs apt-get update).
    tar -C "$PYTHON_ROOTFS" --numeric-owner \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
        -c . 2>>"$STEP_LOG" |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change "ENV SSL_CERT_FILE=$ca" \
            --change "ENV PIP_CERT=$ca" \
            --change "ENV REQUESTS_CA_BUNDLE=$ca" \
            --change 'CMD ["python3"]' \
            - "$tmp_tag" >>"$STEP_LOG" 2>&1 || fail "docker import failed"
    logged docker run --rm --network none "$tmp_tag" python3 -c 'import ssl, venv; print(1)' ||
        fail "python3 (ssl, venv) does not run in the image"
    logged docker run --rm --network none "$tmp_tag" sh -c 'command -v useradd && command -v objdump' ||
        fail "useradd/objdump missing in the image"
    logged docker run --rm --network host "$tmp_tag" \
        sh -c 'python3 -m venv /tmp/v && /tmp/v/bin/pip download -q --no-deps -d /tmp/d six' ||
        fail "pip inside the image cannot download from the package index (CA bundle/proxy?)"
    logged docker tag "$tmp_tag" "$PYTHON_IMAGE"
    logged docker rmi "$tmp_tag"
    done_step "ok (from $cached)"
}

# ---------------------------------------------------------------------------------------
# Step: mariadb image (Debian bookworm's MariaDB 10.11 from debootstrap, imported; engine 1).
# ---------------------------------------------------------------------------------------
# The entrypoint baked into the image: first start initialises the datadir, creates the
# database and the user from the environment; then mariadbd runs as PID 1 on
# 127.0.0.1:$MARIADB_PORT only, and a background probe logs "mariadb ready on ..." once it
# accepts connections.
write_mariadb_entrypoint() { # write_mariadb_entrypoint FILE
    cat >"$1" <<'ENTRYPOINT'
#!/bin/bash
# Written by xtask/engine-up.sh: entrypoint of buildkit-local/mariadb:10.11.
# Environment: MARIADB_PORT (default 3306), MARIADB_ROOT_PASSWORD (required on first start,
# or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD,
# MARIADB_DATADIR (default /var/lib/mysql). Listens on 127.0.0.1 only.
set -euo pipefail

port=${MARIADB_PORT:-3306}
datadir=${MARIADB_DATADIR:-/var/lib/mysql}
sock=/run/mysqld/mysqld.sock
log() { printf 'entrypoint: %s\n' "$*"; }
die() { printf 'entrypoint: error: %s\n' "$*" >&2; exit 1; }
sql_str() { # a value quoted as an SQL string literal
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\'\'}"
}
sql_ident() { # a value quoted as an SQL identifier
    printf '`%s`' "${1//\`/\`\`}"
}

[[ $port =~ ^[0-9]+$ ]] || die "MARIADB_PORT must be a number, got '$port'"
# The official image's way of passing extra server options: docker run IMAGE --opt=value.
if [[ ${1:-} != -* && $# -gt 0 ]]; then exec "$@"; fi

mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld

if [[ ! -d $datadir/mysql ]]; then
    if [[ -z ${MARIADB_ROOT_PASSWORD:-} && ${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-} != 1 ]]; then
        die "first start needs MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1)"
    fi
    log "initialising $datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=socket >/dev/null
    # A temporary server on the socket only (no TCP) to create the database and the user.
    mariadbd --user=mysql --datadir="$datadir" --socket="$sock" --skip-networking \
        --skip-name-resolve &
    tmp_pid=$!
    for ((i = 0; i < 300; i++)); do
        mariadb-admin --socket="$sock" --user=root ping >/dev/null 2>&1 && break
        kill -0 "$tmp_pid" 2>/dev/null || die "mariadbd exited during initialisation"
        sleep 0.1
    done
    {
        echo "DELETE FROM mysql.global_priv WHERE User = '';"  # no anonymous users
        if [[ -n ${MARIADB_ROOT_PASSWORD:-} ]]; then
            echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD($(sql_str "$MARIADB_ROOT_PASSWORD"));"
            echo "CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY $(sql_str "$MARIADB_ROOT_PASSWORD");"
            echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        fi
        if [[ -n ${MARIADB_DATABASE:-} ]]; then
            echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MARIADB_DATABASE") CHARACTER SET utf8mb4;"
        fi
        if [[ -n ${MARIADB_USER:-} ]]; then
            [[ -n ${MARIADB_PASSWORD:-} ]] || die "MARIADB_USER needs MARIADB_PASSWORD"
            echo "CREATE USER $(sql_str "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_str "$MARIADB_PASSWORD");"
            if [[ -n ${MARIADB_DATABASE:-} ]]; then
                echo "GRANT ALL PRIVILEGES ON $(sql_ident "$MARIADB_DATABASE").* TO $(sql_str "$MARIADB_USER")@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$sock" --user=root || die "creating the database and user failed"
    mariadb-admin --socket="$sock" --user=root shutdown
    wait "$tmp_pid" || true
    log "initialised (database '${MARIADB_DATABASE:-}', user '${MARIADB_USER:-}')"
fi

# Log one line once the server accepts TCP connections on loopback.
(
    for ((i = 0; i < 1200; i++)); do
        if mariadb-admin --host=127.0.0.1 --port="$port" --user=UNKNOWN_mariadb_probe \
            ping 2>&1 | grep -qE 'is alive|Access denied'; then
            echo "mariadb ready on 127.0.0.1:$port"
            exit 0
        fi
        sleep 0.1
    done
    echo "entrypoint: mariadb not accepting connections on 127.0.0.1:$port after 120 s" >&2
) &

exec mariadbd --user=mysql --datadir="$datadir" --socket="$sock" \
    --bind-address=127.0.0.1 --port="$port" --skip-name-resolve "$@"
ENTRYPOINT
    chmod 0755 "$1"
}

ensure_mariadb_image() {
    step "mariadb-image$ENGINE_LABEL" "$LOG_DIR/mariadb-image.log"
    if image_exists "$MARIADB_IMAGE"; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    local tmp_tag=buildkit-local/mariadb:engine-up-tmp cached="cached rootfs" name port out i
    if [[ ! -f $MARIADB_ROOTFS_DONE || ! -x $MARIADB_ROOTFS/usr/sbin/mariadbd ]]; then
        cached="debootstrap"
        remove_rootfs "$MARIADB_ROOTFS" "$MARIADB_ROOTFS_DONE"
        mkdir -p "$(dirname "$MARIADB_ROOTFS")"
        logged debootstrap --variant=minbase \
            --include=mariadb-server,mariadb-client,ca-certificates \
            bookworm "$MARIADB_ROOTFS" "$DEBIAN_MIRROR" || {
            remove_rootfs "$MARIADB_ROOTFS" "$MARIADB_ROOTFS_DONE"
            fail "debootstrap of bookworm with mariadb-server failed"
        }
        touch "$MARIADB_ROOTFS_DONE"
    fi
    [[ -x $MARIADB_ROOTFS/usr/bin/mariadb-install-db ]] || fail "mariadb-install-db missing from the mariadb rootfs"
    # The package's own first-run datadir is dropped: the entrypoint creates it from the
    # environment (user, password, database) on first start.
    write_mariadb_entrypoint "$MARIADB_ROOTFS/usr/local/bin/mariadb-entrypoint.sh"
    tar -C "$MARIADB_ROOTFS" --numeric-owner \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
        --exclude='./var/lib/mysql/*' --exclude='./run/mysqld/*' \
        -c . 2>>"$STEP_LOG" |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV MARIADB_PORT=3306' \
            --change 'EXPOSE 3306' \
            --change 'STOPSIGNAL SIGTERM' \
            --change 'ENTRYPOINT ["/usr/local/bin/mariadb-entrypoint.sh"]' \
            --change 'CMD []' \
            - "$tmp_tag" >>"$STEP_LOG" 2>&1 || fail "docker import failed"
    # Smoke test: start on a free loopback port, connect as the created user, query, remove.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo 33306)
    name=engine-up-mariadb-check-$$
    CLEANUPS+=("docker rm -f $name >/dev/null 2>&1")
    logged docker run -d --name "$name" --network host -e MARIADB_PORT="$port" \
        -e MARIADB_ROOT_PASSWORD=rootpw -e MARIADB_DATABASE=checkdb \
        -e MARIADB_USER=check -e MARIADB_PASSWORD=checkpw "$tmp_tag" ||
        fail "docker run of $tmp_tag failed"
    for ((i = 0; i < 600; i++)); do
        out=$(docker logs "$name" 2>&1 || true)
        [[ $out == *$'\n'"mariadb ready on "* || $out == "mariadb ready on "* ]] && break
        [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) == true ]] || {
            docker logs "$name" >>"$STEP_LOG" 2>&1 || true
            fail "the mariadb container exited while starting"
        }
        sleep 0.2
    done
    docker logs "$name" >>"$STEP_LOG" 2>&1 || true
    out=$(docker exec "$name" mariadb --host=127.0.0.1 --port="$port" --user=check --password=checkpw \
        --batch --skip-column-names checkdb -e 'SELECT 40 + 2' 2>>"$STEP_LOG") ||
        fail "cannot query checkdb as user check on 127.0.0.1:$port"
    [[ $out == 42 ]] || fail "SELECT 40 + 2 printed '$out'"
    logged docker rm -f "$name"
    logged docker tag "$tmp_tag" "$MARIADB_IMAGE"
    logged docker rmi "$tmp_tag"
    done_step "ok (from $cached)"
}

# ---------------------------------------------------------------------------------------
# BuildKit builders: buildkitd + buildctl (see ensure_buildkit_binaries); a local image for
# buildx's docker-container driver; a CA with server and client certificates; one remote
# buildkitd on tcp://$BUILDKITD_ADDR with mutual TLS (oci worker, Debian's runc, never the
# engine's containerd); the base images pushed to the loopback registry (a BuildKit daemon
# does not see the engine's image store).
# ---------------------------------------------------------------------------------------
ensure_buildkit_packages() {
    step buildkit-packages "$LOG_DIR/apt.log"
    local need=() p
    for p in runc openssl debootstrap; do pkg_installed "$p" || need+=("$p"); done
    if ((${#need[@]} == 0)); then
        done_step "already up"
        return 0
    fi
    apt_update
    guard_services
    logged "${APT[@]}" install --no-install-recommends "${need[@]}" ||
        fail "apt-get install ${need[*]} failed"
    done_step "ok (installed: ${need[*]})"
}

buildkit_binaries_ok() {
    [[ -x $BUILDKIT_BIN/buildkitd && -x $BUILDKIT_BIN/buildctl && -f $BUILDKIT_BIN/.complete ]] &&
        [[ $(cat "$BUILDKIT_BIN/.complete") == "$BUILDKIT_VERSION" ]]
}

# buildkitd and buildctl, built once per machine by xtask/buildkit-build.sh from Debian
# sid's sources (BuildKit at the version sid's docker.io vendors), in a sid root of its own.
ensure_buildkit_binaries() {
    step buildkit-binaries "$LOG_DIR/buildkit-build.log"
    if buildkit_binaries_ok; then
        done_step "already built ($("$BUILDKIT_BIN/buildkitd" --version 2>/dev/null | awk '{print $3}'))"
        return 0
    fi
    local start=$SECONDS
    printf '(once per machine, 6-13 min)\n'
    STEP_OPEN=0
    env BUILDKIT_VERSION="$BUILDKIT_VERSION" bash "$(dirname "${BASH_SOURCE[0]}")/buildkit-build.sh" "$BUILDKIT_BIN" ||
        fail "building buildkitd/buildctl $BUILDKIT_VERSION from Debian sid's sources failed (log above)"
    "$BUILDKIT_BIN/buildkitd" --version 2>>"$STEP_LOG" | grep -qF " $BUILDKIT_VERSION" ||
        fail "the built buildkitd does not report version $BUILDKIT_VERSION"
    echo "$BUILDKIT_VERSION" >"$BUILDKIT_BIN/.complete"
    mkdir -p "$BUILDKIT_DIR"
    echo "$((SECONDS - start))" >"$BUILDKIT_DIR/build-seconds"
    step buildkit-binaries "$LOG_DIR/buildkit-build.log"
    done_step "ok (built in $((SECONDS - start)) s)"
}

# buildkitd's configuration: oci worker only (never the engine's containerd), the loopback
# registry over plain http.
write_buildkitd_config() { # FILE ROOT
    cat >"$1" <<EOF
# Written by xtask/engine-up.sh for BuildKit $BUILDKIT_VERSION
root = "$2"

[worker.oci]
  enabled = true

[worker.containerd]
  enabled = false

[registry."$REGISTRY_ADDR"]
  http = true
  insecure = true
EOF
}

# The image buildx's docker-container driver runs: buildkitd, buildctl, runc, CA bundle, config.
ensure_buildkit_image() {
    step buildkit-image "$LOG_DIR/buildkit-image.log"
    local ctx=$BUILDKIT_DIR/image-context out
    if image_exists "$BUILDKIT_IMAGE"; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp "$BUILDKIT_BIN/buildkitd" "$BUILDKIT_BIN/buildctl" "$ctx/"
    write_buildkitd_config "$ctx/buildkitd.toml" /var/lib/buildkit
    cat >"$ctx/Dockerfile" <<EOF
# Written by xtask/engine-up.sh: BuildKit $BUILDKIT_VERSION for buildx's docker-container driver.
FROM $PYTHON_IMAGE
RUN apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends runc ca-certificates && rm -rf /var/lib/apt/lists/*
COPY buildkitd buildctl /usr/bin/
COPY buildkitd.toml /etc/buildkit/buildkitd.toml
VOLUME /var/lib/buildkit
ENTRYPOINT ["buildkitd"]
EOF
    logged docker buildx build --builder default --network host --provenance=false \
        --progress plain -t "$BUILDKIT_IMAGE" --load "$ctx" ||
        fail "docker buildx build of $BUILDKIT_IMAGE failed"
    out=$(docker run --rm --network none --entrypoint buildctl "$BUILDKIT_IMAGE" --version 2>>"$STEP_LOG") ||
        fail "buildctl does not run in $BUILDKIT_IMAGE"
    [[ $out == *"$BUILDKIT_VERSION"* ]] || fail "buildctl --version in $BUILDKIT_IMAGE printed '$out'"
    rm -rf "$ctx"
    done_step "ok ($BUILDKIT_VERSION)"
}

# openssl: a CA, a server certificate for 127.0.0.1/localhost, a client certificate.
buildkit_certs_ok() {
    local d=$BUILDKIT_CERTS f
    for f in ca.pem server-cert.pem server-key.pem client-cert.pem client-key.pem; do
        [[ -s $d/$f ]] || return 1
    done
    openssl verify -CAfile "$d/ca.pem" "$d/server-cert.pem" "$d/client-cert.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$d/server-cert.pem" >/dev/null 2>&1 &&
        openssl x509 -checkend 86400 -noout -in "$d/client-cert.pem" >/dev/null 2>&1
}

ensure_buildkit_certs() {
    step buildkit-certs "$LOG_DIR/buildkit-certs.log"
    local d=$BUILDKIT_CERTS f
    if buildkit_certs_ok; then
        done_step "already up"
        return 0
    fi
    : >"$STEP_LOG"
    rm -rf "$d.tmp"
    mkdir -p "$d.tmp"
    (
        cd "$d.tmp"
        logged openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=buildkit-lib local CA' \
            -keyout ca-key.pem -out ca.pem
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        logged openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server-key.pem -out server.csr
        logged openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
            -extfile server.ext -out server-cert.pem
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        logged openssl req -newkey rsa:2048 -nodes -subj '/CN=buildkit-lib client' -keyout client-key.pem -out client.csr
        logged openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
            -extfile client.ext -out client-cert.pem
        rm -f ./*.csr ./*.ext ./*.srl
    ) || fail "openssl could not make the certificates"
    for f in ca.pem server-cert.pem client-cert.pem; do chmod 0644 "$d.tmp/$f"; done
    chmod 0600 "$d.tmp"/*-key.pem
    rm -rf "$d"
    mv "$d.tmp" "$d"
    chmod 0755 "$d"
    done_step "ok ($d)"
}

buildkitd_answers() {
    [[ -x $BUILDKIT_BIN/buildctl ]] &&
        timeout 10 "$BUILDKIT_BIN/buildctl" --addr "tcp://$BUILDKITD_ADDR" \
            --tlscacert "$BUILDKIT_CERTS/ca.pem" --tlscert "$BUILDKIT_CERTS/client-cert.pem" \
            --tlskey "$BUILDKIT_CERTS/client-key.pem" --tlsservername 127.0.0.1 \
            debug workers >/dev/null 2>&1
}

write_buildkitd_remote_config() {
    {
        write_buildkitd_config /dev/stdout "$BUILDKITD_ROOT"
        cat <<EOF

[grpc]
  address = ["tcp://$BUILDKITD_ADDR"]

# Setting ca makes client certificates mandatory (mutual TLS).
[grpc.tls]
  cert = "$BUILDKIT_CERTS/server-cert.pem"
  key = "$BUILDKIT_CERTS/server-key.pem"
  ca = "$BUILDKIT_CERTS/ca.pem"
EOF
    } | write_if_changed "$BUILDKITD_CONFIG"
}

ensure_buildkitd() {
    step buildkitd "$BUILDKITD_LOG"
    local pid i changed=0
    write_buildkitd_remote_config && changed=1
    pid=$(read_pidfile "$BUILDKITD_PIDFILE")
    if ((changed == 0)) && buildkitd_answers; then
        done_step "already up (tcp://$BUILDKITD_ADDR)"
        return 0
    fi
    if pid_is "$pid" buildkitd; then
        if ((changed == 0)); then
            for ((i = 0; i < 50; i++)); do
                buildkitd_answers && { done_step "ok (was starting)"; return 0; }
                sleep 0.2
            done
        fi
        stop_pid "$pid" buildkitd 20 || fail "buildkitd (pid $pid) does not answer nor stop"
    fi
    rm -f "$BUILDKITD_PIDFILE"
    mkdir -p "$BUILDKITD_ROOT"
    printf '\n### %s: starting buildkitd\n' "$(date -u +%FT%TZ)" >>"$BUILDKITD_LOG"
    setsid "$BUILDKIT_BIN/buildkitd" --config "$BUILDKITD_CONFIG" \
        </dev/null >>"$BUILDKITD_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$BUILDKITD_PIDFILE"
    for ((i = 0; i < 300; i++)); do
        buildkitd_answers && { done_step "ok (tcp://$BUILDKITD_ADDR, mutual TLS)"; return 0; }
        pid_alive "$pid" || fail "buildkitd exited while starting"
        sleep 0.2
    done
    fail "buildkitd not answering on tcp://$BUILDKITD_ADDR after 60 s"
}

stop_buildkitd() {
    step buildkitd-stop "$BUILDKITD_LOG"
    local pid
    pid=$(read_pidfile "$BUILDKITD_PIDFILE")
    if ! pid_is "$pid" buildkitd; then
        rm -f "$BUILDKITD_PIDFILE"
        done_step "already down"
        return 0
    fi
    stop_pid "$pid" buildkitd 30 || fail "buildkitd (pid $pid) does not stop"
    rm -f "$BUILDKITD_PIDFILE"
    done_step "stopped"
}

registry_has() { # registry_has REPO TAG
    curl -fsS --noproxy '*' -m 5 -o /dev/null -I \
        -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY_ADDR/v2/$1/manifests/$2" 2>/dev/null
}

# The base images, in the loopback registry for the BuildKit daemons (FROM 127.0.0.1:5000/...).
ensure_registry_base_images() {
    step registry-base-images "$LOG_DIR/registry-base-images.log"
    local img repo tag pushed=()
    for img in "$BUSYBOX_IMAGE" "$PYTHON_IMAGE"; do
        repo=${img%:*} tag=${img##*:}
        registry_has "$repo" "$tag" && continue
        logged docker tag "$img" "$REGISTRY_ADDR/$img" || fail "docker tag $img failed"
        logged docker push "$REGISTRY_ADDR/$img" || fail "docker push $REGISTRY_ADDR/$img failed"
        logged docker rmi "$REGISTRY_ADDR/$img" || true
        pushed+=("$REGISTRY_ADDR/$img")
    done
    if ((${#pushed[@]} == 0)); then done_step "already up"; else done_step "ok (pushed: ${pushed[*]})"; fi
}

# The BuildKit image in another engine too (the oldest, for the tests run on it): copied
# from the default engine with save/load.
ensure_buildkit_image_in_engine() {
    step "buildkit-image$ENGINE_LABEL" "$LOG_DIR/buildkit-image.log"
    if image_exists "$BUILDKIT_IMAGE"; then
        done_step "already up"
        return 0
    fi
    DOCKER_HOST=unix://$RUN_DIR/docker.sock docker save "$BUILDKIT_IMAGE" 2>>"$STEP_LOG" |
        docker load >>"$STEP_LOG" 2>&1 || fail "cannot copy $BUILDKIT_IMAGE into the engine on $ENGINE_HOST"
    image_exists "$BUILDKIT_IMAGE" || fail "$BUILDKIT_IMAGE is not in the engine on $ENGINE_HOST after docker load"
    done_step "ok (copied from the default engine)"
}

ensure_builders_rig() {
    ensure_buildkit_packages
    ensure_buildkit_binaries
    ensure_buildkit_image
    ensure_buildkit_certs
    ensure_buildkitd
    ensure_registry_base_images
}

# ---------------------------------------------------------------------------------------
# Stopping.
# ---------------------------------------------------------------------------------------
stop_dockerd() {
    step "dockerd-stop$ENGINE_LABEL" "$DOCKERD_LOG"
    local pid
    pid=$(read_pidfile "$DOCKERD_PIDFILE")
    if ! pid_is "$pid" dockerd; then
        docker_answers && fail "an engine answers on $ENGINE_HOST but $DOCKERD_PIDFILE does not name it"
        rm -f "$DOCKERD_PIDFILE"
        done_step "already down"
        return 0
    fi
    stop_pid "$pid" dockerd 60 || fail "dockerd (pid $pid) does not stop"
    rm -f "$DOCKERD_PIDFILE"
    done_step "stopped"
}

stop_containerd() {
    step "containerd-stop$ENGINE_LABEL" "$CONTAINERD_LOG"
    local pid
    pid=$(read_pidfile "$CONTAINERD_PIDFILE")
    if ! pid_is "$pid" containerd; then
        rm -f "$CONTAINERD_PIDFILE"
        done_step "already down"
        return 0
    fi
    stop_pid "$pid" containerd 30 || fail "containerd (pid $pid) does not stop"
    rm -f "$CONTAINERD_PIDFILE"
    done_step "stopped"
}

# ---------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------
# The lines that point a docker client at ENGINE (stdout, for `eval`): its socket, its own
# docker CLI first on PATH; for the other engines also their own client configuration
# (their buildx plugin). The default engine's buildx is where every docker CLI looks.
print_env() { # print_env [current|second|oldest]
    local name=${1:-current} s rel
    case $name in
    current) s= rel=sid ;;
    second) s=2 rel=sid ;;
    oldest) s=-oldest rel=trixie ;;
    *) echo "engine-up: unknown engine '$name' (current, second or oldest)" >&2; exit 2 ;;
    esac
    printf 'export DOCKER_HOST=%s\n' "unix://$RUN_DIR/docker$s.sock"
    printf 'export PATH=%s:"$PATH"\n' "$STATE_DIR/engines/$rel/bin"
    [[ $name == current ]] || printf 'export DOCKER_CONFIG=%s\n' "$STATE_DIR/engines/$rel/docker-config"
    printf 'export BUILDKIT_LIB_ENGINE=%s\n' "$name"
    printf 'export BUILDKIT_LIB_SECOND_HOST=%s\n' "unix://$RUN_DIR/docker2.sock"
    printf 'export BUILDKIT_LIB_OLDEST_HOST=%s\n' "unix://$RUN_DIR/docker-oldest.sock"
    printf 'export BUILDKIT_LIB_REMOTE_BUILDKIT=%s\n' "tcp://$BUILDKITD_ADDR"
    printf 'export BUILDKIT_LIB_BUILDKIT_CERTS=%s\n' "$BUILDKIT_CERTS"
    printf 'export BUILDKIT_LIB_BUILDKIT_IMAGE=%s\n' "$BUILDKIT_IMAGE"
    printf 'export BUILDKIT_LIB_BUILDKIT_BIN=%s\n' "$BUILDKIT_BIN"
}

# An engine started earlier from another release (an older set-up) is stopped, so that it
# restarts from the binaries this set-up installed.
stop_if_stale() {
    local want have
    want=$(awk '$1 == "docker.io" {print $2}' "$STATE_DIR/engines/$ENGINE_RELEASE/installed.txt")
    want=${want#*:}
    want=${want%%+*}
    want=${want%%-*}
    docker_answers || return 0
    have=$(timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null || true)
    [[ ${have%%+*} == "$want" ]] && return 0
    echo "engine-up: the engine on $ENGINE_HOST runs Docker $have, not $want: restarting it"
    stop_dockerd
    stop_containerd
}

# One engine, up with its base image.
engine_up() { # engine_up current|second|oldest
    select_engine "$1"
    ensure_release "$ENGINE_RELEASE"
    [[ $1 != current ]] || ensure_default_client
    stop_if_stale
    ensure_containerd
    ensure_dockerd
    ensure_buildx
    ensure_busybox_image
}

usage() {
    sed -n '2,/^set -Eeuo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

need_root_and_lock() {
    [[ $EUID -eq 0 ]] || fail "must run as root"
    mkdir -p "$RUN_DIR" "$STATE_DIR" "$LOG_DIR"
    exec 9>"$LOCK_FILE"
    if ! flock -n 9; then
        echo "engine-up: waiting for another engine-up run to finish..."
        flock -w 1800 9 || fail "could not take $LOCK_FILE within 30 min"
    fi
}

# One line per thing, "NAME: up|down|present|missing ..."; exit 1 when something the
# default set-up needs is not up (the optional components are reported, not required).
status() {
    local rc=0 n img
    for n in current second oldest; do
        select_engine "$n"
        if docker_answers; then
            echo "engine $n: up ($ENGINE_HOST, Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
            for img in "$BUSYBOX_IMAGE" "$PYTHON_IMAGE" "$MARIADB_IMAGE"; do
                if image_exists "$img"; then echo "  image $img: present"; else echo "  image $img: missing"; fi
            done
        else
            echo "engine $n: down"
            [[ $n == current ]] && rc=1
        fi
    done
    select_engine current
    if registry_answers; then echo "registry: up (http://$REGISTRY_ADDR)"; else echo "registry: down"; rc=1; fi
    if [[ $(head -n 1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null) == enabled ]]; then
        echo "binfmt qemu-aarch64: enabled"
    else
        echo "binfmt qemu-aarch64: disabled"
    fi
    if buildkit_binaries_ok; then echo "buildkitd/buildctl: built ($BUILDKIT_BIN)"; else echo "buildkitd/buildctl: missing"; fi
    if image_exists "$BUILDKIT_IMAGE"; then echo "image $BUILDKIT_IMAGE: present"; else echo "image $BUILDKIT_IMAGE: missing"; fi
    if buildkitd_answers; then echo "buildkitd: up (tcp://$BUILDKITD_ADDR, mutual TLS)"; else echo "buildkitd: down"; fi
    return $rc
}

# What each release's prefix holds (package and Debian version), as installed.
versions() {
    local rel
    for rel in sid trixie; do
        if [[ -f $STATE_DIR/engines/$rel/installed.txt ]]; then
            sed "s/^/$rel: /" "$STATE_DIR/engines/$rel/installed.txt"
        else
            echo "$rel: not installed"
        fi
    done
}

# What `up` can bring up; `base` is what `cargo xtask build` needs.
COMPONENTS="base second oldest arm64 mariadb buildkit all"

up() { # up [COMPONENT...]
    local want=" ${*:-base} " c
    for c in ${want}; do
        [[ " $COMPONENTS " == *" $c "* ]] || fail "unknown component '$c' (one of: $COMPONENTS)"
    done
    [[ $want == *" all "* ]] && want=" base second oldest arm64 mariadb buildkit "
    need_root_and_lock
    # Everything needs the default engine, the registry and the base images.
    ensure_packages
    start_python_rootfs
    engine_up current
    start_registry
    ensure_python_image
    if [[ $want == *" arm64 "* ]]; then select_engine current; ensure_arm64; fi
    if [[ $want == *" mariadb "* ]]; then select_engine current; ensure_mariadb_image; fi
    if [[ $want == *" second "* ]]; then engine_up second; fi
    if [[ $want == *" oldest "* ]]; then
        engine_up oldest
        ensure_python_image
        ensure_mariadb_image
    fi
    if [[ $want == *" buildkit "* ]]; then
        select_engine current
        ensure_builders_rig
        if [[ $want == *" oldest "* ]]; then
            select_engine oldest
            ensure_buildkit_image_in_engine
        fi
    fi
    select_engine current
    echo "engine-up: up ($want); point clients at the default engine with:"
    print_env current
}

main() {
    local cmd=${1:-up} n
    [[ $# -gt 0 ]] && shift
    case $cmd in
    up) up "$@" ;;
    env) print_env "$@" ;;
    registry-start)
        need_root_and_lock
        start_registry
        ;;
    registry-stop)
        need_root_and_lock
        stop_registry
        ;;
    down)
        need_root_and_lock
        stop_buildkitd
        stop_registry
        for n in oldest second current; do
            select_engine "$n"
            stop_dockerd
            stop_containerd
        done
        ;;
    status)
        trap - ERR
        status
        ;;
    versions) versions ;;
    help | -h | --help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
