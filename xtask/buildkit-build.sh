#!/usr/bin/env bash
# xtask/buildkit-build.sh: build BuildKit's buildkitd and buildctl (static, linux/amd64)
# from Debian sid's sources, without installing Go or any sid package into this system.
#
# Usage: buildkit-build.sh OUTPUT_DIR
#   Writes OUTPUT_DIR/buildkitd, OUTPUT_DIR/buildctl and OUTPUT_DIR/BUILD-INFO.txt (which
#   Debian packages the sources came from). Idempotent: does nothing when both binaries
#   are already there and report $BUILDKIT_VERSION. Run as root on Debian 12 (bookworm).
#   The project keeps them in /var/lib/buildkit-lib/buildkit-current/bin.
#
# Where the source comes from. Debian ships no buildkitd. sid's docker.io (28.5.x) source
# package lists BuildKit as a component tarball (orig-buildkit.tar.xz), but the archive
# answers 404 for it, so it is tried once only for the record. Instead:
#   * BuildKit itself: the tree that sid's golang-github-docker-docker-dev installs under
#     /usr/share/gocode/src/github.com/moby/buildkit: that component (BuildKit at the tag the
#     engine's vendor.mod pins, v0.25.2 for docker.io 28.5.2) minus its vendor/ directory,
#     with Debian's patches applied; it has cmd/buildkitd and cmd/buildctl but no go.mod;
#   * its dependencies: sid's golang-*-dev packages (docker.io's build dependencies plus
#     go-systemd, hashstructure and go-archvariant), compiled in GOPATH mode like
#     debian/rules compiles dockerd (GO111MODULE=off, tags osusergo netgo static_build);
#   * the few packages Debian does not package (github.com/moby/profiles/seccomp,
#     github.com/tonistiigi/go-actions-cache): copied from the engine source's vendor/
#     directory (docker.io's orig.tar.xz, which downloads), found by compiling until
#     nothing is missing;
#   * one local patch (written out below): buildkitd's oci worker without the
#     fuse-overlayfs snapshotter (not packaged in Debian) and the stargz snapshotter
#     (Debian's 0.14 predates containerd v2). overlayfs and native, the snapshotters
#     used here, are unchanged.
# The version string is set with -X github.com/moby/buildkit/version.Version after checking
# that the engine's vendor.mod pins exactly that BuildKit version.
#
# How: a `debootstrap --variant=minbase sid` root under $WORK (default
# /var/lib/buildkit-lib/buildkit-src-work), entered with chroot (proc and a bind of /dev
# mounted for the time of the run, unmounted on exit), with its own apt configuration
# (deb + deb-src sid, Release expiry not checked). Only `debootstrap` is installed on the
# host, from bookworm, if missing. About 5-8 min from nothing on 2 cores, ~3.5 GB of disk
# during the build; on success the sid root is deleted (KEEP_WORK=1 keeps it), on failure
# it is kept so that a second run does not start over.
#
# Each step prints one line; everything else goes to $WORK/buildkit-build.log. A failure
# prints "buildkit-build: FAILED at step <name>" and the tail of the log, and exits 1.
# shellcheck disable=SC2016 # dpkg-query formats are meant literally
set -Eeuo pipefail

readonly BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.25.2}
readonly WORK=${BUILDKIT_SRC_WORK:-/var/lib/buildkit-lib/buildkit-src-work}
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly SUITE=sid
readonly ROOT=$WORK/sid-root
readonly LOG=$WORK/buildkit-build.log
# sid packages installed into the build root, on top of `apt-get build-dep docker.io`.
readonly EXTRA_PACKAGES=(
    golang-github-docker-docker-dev             # the BuildKit tree
    golang-github-coreos-go-systemd-dev         # github.com/coreos/go-systemd/v22
    golang-github-mitchellh-hashstructure-dev   # github.com/mitchellh/hashstructure/v2
    golang-github-tonistiigi-go-archvariant-dev # github.com/tonistiigi/go-archvariant
    xz-utils patch ca-certificates
)

CURRENT_STEP=start STEP_OPEN=0 STEP_START=$SECONDS MOUNTED=()

step() { # step NAME
    CURRENT_STEP=$1 STEP_OPEN=1 STEP_START=$SECONDS
    printf '\n### %s: step %s\n' "$(date -u +%FT%TZ)" "$1" >>"$LOG"
    printf 'buildkit-build: %s... ' "$1"
}

done_step() { # done_step [MESSAGE]
    printf '%s (%d s)\n' "${1:-ok}" "$((SECONDS - STEP_START))"
    STEP_OPEN=0
}

fail() { # fail MESSAGE
    trap - ERR
    ((STEP_OPEN)) && printf '\n'
    STEP_OPEN=0
    printf 'buildkit-build: FAILED at step %s: %s\n' "$CURRENT_STEP" "$1" >&2
    if [[ -s $LOG ]]; then
        printf -- '--- last lines of %s ---\n' "$LOG" >&2
        tail -n 30 "$LOG" | cut -c1-400 >&2
        printf -- '---\n' >&2
    fi
    exit 1
}

trap 'fail "unexpected error (line $LINENO: $BASH_COMMAND)"' ERR

logged() { # logged CMD...: run with output to the log
    printf '### %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 </dev/null
}

# Run a command inside the sid root with a clean environment.
in_root() {
    local env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
    local v
    for v in http_proxy https_proxy no_proxy; do
        [[ -n ${!v:-} ]] && env+=("$v=${!v}")
    done
    chroot "$ROOT" /usr/bin/env -i "${env[@]}" "$@"
}

unmount_root() {
    local m
    while read -r m; do
        [[ -n $m ]] && umount -l "$m" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET | grep -F "$ROOT/" | sort -r || true)
    MOUNTED=()
}

cleanup() {
    ((${#MOUNTED[@]})) && unmount_root
    [[ -n ${LOCK_FD:-} ]] && exec {LOCK_FD}>&- || true
}
trap cleanup EXIT

reports_version() { # reports_version BINARY: prints "<name> github.com/moby/buildkit vX rev"?
    [[ -x $1 ]] && [[ $("$1" --version 2>/dev/null) == *" $BUILDKIT_VERSION"* ]]
}

# The local patch to BuildKit (applied with patch -p1 in the BuildKit tree).
write_patch() { # FILE
    cat >"$1" <<'PATCH'
--- a/cmd/buildkitd/main_oci_worker.go
+++ b/cmd/buildkitd/main_oci_worker.go
@@ -4,13 +4,10 @@
 
 import (
 	"context"
-	"fmt"
 	"maps"
 	"os"
 	"os/exec"
-	"path/filepath"
 	"strconv"
-	"strings"
 	"time"
 
 	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
@@ -19,16 +16,9 @@
 	snproxy "github.com/containerd/containerd/v2/core/snapshots/proxy"
 	"github.com/containerd/containerd/v2/defaults"
 	"github.com/containerd/containerd/v2/pkg/dialer"
-	"github.com/containerd/containerd/v2/pkg/reference"
 	"github.com/containerd/containerd/v2/plugins/snapshots/native"
 	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
 	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
-	fuseoverlayfs "github.com/containerd/fuse-overlayfs-snapshotter/v2"
-	sgzfs "github.com/containerd/stargz-snapshotter/fs"
-	sgzconf "github.com/containerd/stargz-snapshotter/fs/config"
-	sgzlayer "github.com/containerd/stargz-snapshotter/fs/layer"
-	sgzsource "github.com/containerd/stargz-snapshotter/fs/source"
-	remotesn "github.com/containerd/stargz-snapshotter/snapshot"
 	"github.com/moby/buildkit/cmd/buildkitd/config"
 	"github.com/moby/buildkit/executor/oci"
 	"github.com/moby/buildkit/session"
@@ -36,14 +26,11 @@
 	"github.com/moby/buildkit/util/disk"
 	"github.com/moby/buildkit/util/network/cniprovider"
 	"github.com/moby/buildkit/util/network/netproviders"
-	"github.com/moby/buildkit/util/resolver"
 	"github.com/moby/buildkit/worker"
 	"github.com/moby/buildkit/worker/base"
 	"github.com/moby/buildkit/worker/runc"
 	"github.com/moby/sys/userns"
-	"github.com/pelletier/go-toml"
 	"github.com/pkg/errors"
-	"github.com/sirupsen/logrus"
 	"github.com/urfave/cli"
 	"golang.org/x/sync/semaphore"
 	"google.golang.org/grpc"
@@ -389,13 +376,9 @@
 		if err := overlayutils.Supported(commonRoot); err == nil {
 			name = "overlayfs"
 		} else {
-			bklog.L.Debugf("auto snapshotter: overlayfs is not available for %s, trying fuse-overlayfs: %v", commonRoot, err)
-			if err2 := fuseoverlayfs.Supported(commonRoot); err2 == nil {
-				name = "fuse-overlayfs"
-			} else {
-				bklog.L.Debugf("auto snapshotter: fuse-overlayfs is not available for %s, falling back to native: %v", commonRoot, err2)
-				name = "native"
-			}
+			// Debian build: fuse-overlayfs is not built in (see the case below).
+			bklog.L.Debugf("auto snapshotter: overlayfs is not available for %s, falling back to native: %v", commonRoot, err)
+			name = "native"
 		}
 		bklog.L.Infof("auto snapshotter: using %s", name)
 	}
@@ -410,50 +393,10 @@
 		snFactory.New = func(root string) (ctdsnapshot.Snapshotter, error) {
 			return overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
 		}
-	case "fuse-overlayfs":
-		snFactory.New = func(root string) (ctdsnapshot.Snapshotter, error) {
-			// no Opt (AsynchronousRemove is untested for fuse-overlayfs)
-			return fuseoverlayfs.NewSnapshotter(root)
-		}
-	case "stargz":
-		sgzCfg := sgzconf.Config{}
-		if cfg.StargzSnapshotterConfig != nil {
-			// In order to keep the stargz Config type (and dependency) out of
-			// the main BuildKit config, the main config Unmarshalls it into a
-			// generic map[string]interface{}. Here we convert it back into TOML
-			// tree, and unmarshal it to the actual type.
-			t, err := toml.TreeFromMap(cfg.StargzSnapshotterConfig)
-			if err != nil {
-				return snFactory, errors.Wrapf(err, "failed to parse stargz config")
-			}
-			err = t.Unmarshal(&sgzCfg)
-			if err != nil {
-				return snFactory, errors.Wrapf(err, "failed to parse stargz config")
-			}
-		}
-		snFactory.New = func(root string) (ctdsnapshot.Snapshotter, error) {
-			userxattr, err := overlayutils.NeedsUserXAttr(root)
-			if err != nil {
-				bklog.L.WithError(err).Warnf("cannot detect whether \"userxattr\" option needs to be used, assuming to be %v", userxattr)
-			}
-			opq := sgzlayer.OverlayOpaqueTrusted
-			if userxattr {
-				opq = sgzlayer.OverlayOpaqueUser
-			}
-			fs, err := sgzfs.NewFilesystem(filepath.Join(root, "stargz"),
-				sgzCfg,
-				// Source info based on the buildkit's registry config and session
-				sgzfs.WithGetSources(sourceWithSession(hosts, sm)),
-				sgzfs.WithMetricsLogLevel(logrus.DebugLevel),
-				sgzfs.WithOverlayOpaqueType(opq),
-			)
-			if err != nil {
-				return nil, err
-			}
-			return remotesn.NewSnapshotter(context.Background(),
-				filepath.Join(root, "snapshotter"),
-				fs, remotesn.AsynchronousRemove, remotesn.NoRestore)
-		}
+	case "fuse-overlayfs", "stargz":
+		// Debian build: Debian packages no fuse-overlayfs-snapshotter, and its
+		// stargz-snapshotter (0.14) predates containerd v2, so neither is built in.
+		return snFactory, errors.Errorf("snapshotter %q is not built into this buildkitd", name)
 	default:
 		return snFactory, errors.Errorf("unknown snapshotter name: %q", name)
 	}
@@ -469,74 +412,3 @@
 	}
 	return true
 }
-
-const (
-	// targetRefLabel is a label which contains image reference.
-	targetRefLabel = "containerd.io/snapshot/remote/stargz.reference"
-
-	// targetDigestLabel is a label which contains layer digest.
-	targetDigestLabel = "containerd.io/snapshot/remote/stargz.digest"
-
-	// targetImageLayersLabel is a label which contains layer digests contained in
-	// the target image.
-	targetImageLayersLabel = "containerd.io/snapshot/remote/stargz.layers"
-
-	// targetSessionLabel is a labeld which contains session IDs usable for
-	// authenticating the target snapshot.
-	targetSessionLabel = "containerd.io/snapshot/remote/stargz.session"
-)
-
-// sourceWithSession returns a callback which implements a converter from labels to the
-// typed snapshot source info. This callback is called everytime the snapshotter resolves a
-// snapshot. This callback returns configuration that is based on buildkitd's registry config
-// and utilizes the session-based authorizer.
-func sourceWithSession(hosts docker.RegistryHosts, sm *session.Manager) sgzsource.GetSources {
-	return func(labels map[string]string) (src []sgzsource.Source, err error) {
-		// labels contains multiple source candidates with unique IDs appended on each call
-		// to the snapshotter API. So, first, get all these IDs
-		var ids []string
-		for k := range labels {
-			if after, ok := strings.CutPrefix(k, targetRefLabel+"."); ok {
-				ids = append(ids, after)
-			}
-		}
-
-		// Parse all labels
-		for _, id := range ids {
-			// Parse session labels
-			ref, ok := labels[targetRefLabel+"."+id]
-			if !ok {
-				continue
-			}
-			named, err := reference.Parse(ref)
-			if err != nil {
-				continue
-			}
-			var sids []string
-			for i := 0; ; i++ {
-				sidKey := targetSessionLabel + "." + fmt.Sprintf("%d", i) + "." + id
-				sid, ok := labels[sidKey]
-				if !ok {
-					break
-				}
-				sids = append(sids, sid)
-			}
-
-			// Get source information based on labels and RegistryHosts containing
-			// session-based authorizer.
-			parse := sgzsource.FromDefaultLabels(func(ref reference.Spec) ([]docker.RegistryHost, error) {
-				return resolver.DefaultPool.GetResolver(hosts, named.String(), "pull", sm, session.NewGroup(sids...)).
-					HostsFunc(ref.Hostname())
-			})
-			if s, err := parse(map[string]string{
-				targetRefLabel:         ref,
-				targetDigestLabel:      labels[targetDigestLabel+"."+id],
-				targetImageLayersLabel: labels[targetImageLayersLabel+"."+id],
-			}); err == nil {
-				src = append(src, s...)
-			}
-		}
-
-		return src, nil
-	}
-}
PATCH
}

# Compiles inside the sid root: BuildKit tree copied into /build/gopath and patched,
# GOPATH=/build/gopath:/usr/share/gocode; packages Go cannot find are taken from the
# engine's vendor/ (or, for a /vN import of a Debian package installed without /vN, a
# symlink); then buildkitd and buildctl; then BUILD-INFO lines about the sources used.
write_build_script() { # FILE
    cat >"$1" <<'SCRIPT'
#!/bin/bash
# Written by xtask/buildkit-build.sh; runs inside the sid build root.
set -euo pipefail
version=$1
W=/build GP=/build/gopath BK=github.com/moby/buildkit
export GOPATH=$GP:/usr/share/gocode GOCACHE=$W/gocache
export GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=
tags='osusergo netgo static_build'
ldflags="-X $BK/version.Version=$version -s -w"
rm -rf "$GP" "$W/out"
mkdir -p "$GP/src/github.com/moby" "$W/out"
cp -a "/usr/share/gocode/src/$BK" "$GP/src/$BK"
cd "$GP/src/$BK"
patch -p1 -N -f <"$W/buildkitd-no-stargz-fuse-overlayfs.patch"
: >"$W/out/filled.txt"
for round in $(seq 1 20); do
    echo "--- compile round $round"
    if out=$(go build -tags "$tags" -ldflags "$ldflags" -o "$W/out/buildkitd" ./cmd/buildkitd 2>&1); then
        break
    fi
    miss=$(printf '%s\n' "$out" | sed -n 's/.*cannot find package "\([^"]*\)".*/\1/p' | sort -u)
    if [[ -z $miss ]]; then
        printf '%s\n' "$out"
        echo "compile error (not a missing package)"
        exit 1
    fi
    for p in $miss; do
        if [[ -d $W/engine/vendor/$p ]]; then
            mkdir -p "$GP/src/$p"
            find "$W/engine/vendor/$p" -maxdepth 1 -type f -exec cp {} "$GP/src/$p/" \;
            echo "vendored-from-engine $p" | tee -a "$W/out/filled.txt"
        elif [[ $p =~ ^(.+)/(v[0-9]+)(/.*)?$ ]] &&
            grep -qx "module ${BASH_REMATCH[1]}/${BASH_REMATCH[2]}" "/usr/share/gocode/src/${BASH_REMATCH[1]}/go.mod" 2>/dev/null; then
            m=${BASH_REMATCH[1]}/${BASH_REMATCH[2]}
            if [[ ! -e $GP/src/$m ]]; then
                mkdir -p "$(dirname "$GP/src/$m")"
                ln -s "/usr/share/gocode/src/${BASH_REMATCH[1]}" "$GP/src/$m"
                echo "symlinked $m -> /usr/share/gocode/src/${BASH_REMATCH[1]}" | tee -a "$W/out/filled.txt"
            fi
        else
            printf '%s\n' "$out"
            echo "MISSING PACKAGE (in no Debian package installed, not in the engine's vendor/): $p"
            exit 1
        fi
    done
done
[[ -x $W/out/buildkitd ]] || { echo "buildkitd not built after 20 rounds"; exit 1; }
go build -tags "$tags" -ldflags "$ldflags" -o "$W/out/buildctl" ./cmd/buildctl
"$W/out/buildkitd" --version
"$W/out/buildctl" --version
# Which Debian packages the compiled (non-standard-library) Go packages came from: one
# .go file of each package directory, asked to dpkg -S.
set +e +o pipefail
go list -tags "$tags" -deps -f '{{if not .Standard}}{{.Dir}}{{end}}' ./cmd/buildkitd ./cmd/buildctl |
    sort -u >"$W/out/dirs.txt"
while read -r d; do
    d=$(readlink -f "$d")
    [[ $d == /usr/share/gocode/* ]] || continue
    for f in "$d"/*.go; do echo "$f"; break; done
done <"$W/out/dirs.txt" >"$W/out/files.txt"
xargs -r dpkg -S <"$W/out/files.txt" 2>/dev/null | sed 's/: .*//' | tr ',' '\n' | tr -d ' ' | grep -v '^$' |
    sort -u | xargs -r dpkg-query -W -f '${Package} ${Version}\n' >"$W/out/packages.txt"
echo "$(grep -c . "$W/out/dirs.txt") Go packages compiled, from $(grep -c . "$W/out/packages.txt") Debian packages"
SCRIPT
}

# ---------------------------------------------------------------------------------------
[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 OUTPUT_DIR" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "buildkit-build: must run as root (debootstrap, chroot)" >&2; exit 2; }
OUT=$1
mkdir -p "$WORK"
exec {LOCK_FD}>"$WORK/.lock"
flock -w 7200 "$LOCK_FD" || { echo "buildkit-build: another run holds $WORK/.lock" >&2; exit 1; }
TOTAL_START=$SECONDS

step check
if reports_version "$OUT/buildkitd" && reports_version "$OUT/buildctl"; then
    done_step "already built: $("$OUT/buildkitd" --version) in $OUT"
    exit 0
fi
printf '\n### %s: building BuildKit %s into %s\n' "$(date -u +%FT%TZ)" "$BUILDKIT_VERSION" "$OUT" >>"$LOG"
done_step "not built yet (log: $LOG)"

step host-packages
if command -v debootstrap >/dev/null 2>&1; then
    done_step "already up"
else
    apt_install=(apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends install debootstrap)
    if ! DEBIAN_FRONTEND=noninteractive logged "${apt_install[@]}"; then
        logged apt-get -o DPkg::Lock::Timeout=600 -q update || true
        DEBIAN_FRONTEND=noninteractive logged "${apt_install[@]}" || fail "apt-get install debootstrap failed"
    fi
    done_step "ok (installed debootstrap)"
fi

step sid-root
if [[ -f $ROOT.complete && -x $ROOT/usr/bin/apt-get ]]; then
    done_step "already up ($ROOT)"
else
    unmount_root
    rm -rf --one-file-system "$ROOT" "$ROOT.complete" "$ROOT.deps-done"
    logged debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" || fail "debootstrap $SUITE failed"
    touch "$ROOT.complete"
    done_step "ok (debootstrap --variant=minbase $SUITE)"
fi

step mounts
MOUNTED=(1)
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
done_step "ok (proc, /dev; unmounted on exit)"

step sid-apt
printf 'deb %s %s main\ndeb-src %s %s main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/apt.conf.d/99buildkit-build" <<'APT'
// Written by xtask/buildkit-build.sh. The mirror's sid Release file may be past its
// Valid-Until date; recommends are not needed to compile.
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT
logged in_root apt-get -q update || fail "apt-get update (sid) failed"
done_step "ok"

step build-deps
if [[ -f $ROOT.deps-done ]]; then
    done_step "already installed"
else
    logged in_root apt-get -q -y build-dep docker.io || fail "apt-get build-dep docker.io (sid) failed"
    logged in_root apt-get -q -y install "${EXTRA_PACKAGES[@]}" || fail "apt-get install ${EXTRA_PACKAGES[*]} failed"
    touch "$ROOT.deps-done"
    done_step "ok ($(in_root dpkg-query -W -f '${Status}\n' | grep -c 'ok installed') packages in the root)"
fi
DEV_VERSION=$(in_root dpkg-query -W -f '${Version}' golang-github-docker-docker-dev)
GO_VERSION=$(in_root go version | awk '{print $3}')
[[ -d $ROOT/usr/share/gocode/src/github.com/moby/buildkit/cmd/buildkitd ]] ||
    fail "golang-github-docker-docker-dev $DEV_VERSION ships no BuildKit cmd/buildkitd"

step source
# docker.io's source at the version of the installed golang-github-docker-docker-dev: the
# engine tarball carries vendor.mod (the BuildKit version) and vendor/ (what Debian does not
# package). The .dsc and orig-buildkit.tar.xz answer 404 on the mirror; apt-get source then
# fails, so the engine tarball is checked for instead.
mkdir -p "$ROOT/build/dl"
UPSTREAM=${DEV_VERSION%-*}
UPSTREAM=${UPSTREAM#*:}
ENGINE_TAR=docker.io_$UPSTREAM.orig.tar.xz
BK_TAR=docker.io_$UPSTREAM.orig-buildkit.tar.xz
if [[ ! -s $ROOT/build/dl/$ENGINE_TAR ]]; then
    logged in_root sh -c "cd /build/dl && apt-get source --download-only docker.io=$DEV_VERSION" || true
fi
[[ -s $ROOT/build/dl/$ENGINE_TAR ]] || fail "could not download $ENGINE_TAR (docker.io $DEV_VERSION)"
if [[ -s $ROOT/build/dl/$BK_TAR ]]; then bk_note="$BK_TAR is there (not used)"; else bk_note="$BK_TAR: not on the mirror"; fi
rm -rf "$ROOT/build/src" "$ROOT/build/engine"
mkdir -p "$ROOT/build/src"
logged in_root tar -C /build/src --strip-components=2 --wildcards -xf "/build/dl/$ENGINE_TAR" \
    '*/engine/vendor.mod' '*/engine/vendor/*' || fail "cannot unpack $ENGINE_TAR"
mv "$ROOT/build/src/engine" "$ROOT/build/engine"
PINNED=$(awk '$1 == "github.com/moby/buildkit" { print $2; exit }' "$ROOT/build/engine/vendor.mod")
[[ $PINNED == "$BUILDKIT_VERSION" ]] ||
    fail "docker.io $DEV_VERSION's vendor.mod pins BuildKit '$PINNED', not $BUILDKIT_VERSION: set BUILDKIT_VERSION=$PINNED (and check the patch still applies)"
done_step "ok (docker.io $DEV_VERSION, vendor.mod pins BuildKit $PINNED; $bk_note)"

step compile
write_patch "$ROOT/build/buildkitd-no-stargz-fuse-overlayfs.patch"
write_build_script "$ROOT/build/build.sh"
logged in_root bash /build/build.sh "$BUILDKIT_VERSION" || fail "compiling buildkitd/buildctl failed"
done_step "ok ($GO_VERSION, $(tail -n 1 "$LOG"))"

step install
B=$ROOT/build/out
reports_version "$B/buildkitd" || fail "the built buildkitd does not report $BUILDKIT_VERSION"
reports_version "$B/buildctl" || fail "the built buildctl does not report $BUILDKIT_VERSION"
mkdir -p "$OUT"
{
    echo "# Written by xtask/buildkit-build.sh on $(date -u +%FT%TZ)"
    "$B/buildkitd" --version
    "$B/buildctl" --version
    echo
    echo "BuildKit source: /usr/share/gocode/src/github.com/moby/buildkit of golang-github-docker-docker-dev $DEV_VERSION (Debian $SUITE)"
    echo "  = BuildKit $PINNED as pinned by vendor.mod of docker.io $DEV_VERSION's engine source"
    echo "Local patch: buildkitd-no-stargz-fuse-overlayfs.patch (no fuse-overlayfs or stargz snapshotter)"
    echo "Compiler: $GO_VERSION (golang-go $(in_root dpkg-query -W -f '${Version}' golang-go)), GO111MODULE=off, CGO_ENABLED=0, tags osusergo netgo static_build"
    echo
    echo "Filled in: from the engine source's vendor/ (not packaged in Debian), or a /vN symlink to a Debian package:"
    sed 's/^/  /' "$B/filled.txt"
    echo
    echo "Debian packages the compiled Go packages came from:"
    sed 's/^/  /' "$B/packages.txt"
} >"$B/BUILD-INFO.txt"
for f in buildkitd buildctl; do
    install -m 0755 "$B/$f" "$OUT/.$f.tmp"
    mv -f "$OUT/.$f.tmp" "$OUT/$f"
done
install -m 0644 "$B/BUILD-INFO.txt" "$OUT/BUILD-INFO.txt"
done_step "ok ($("$OUT/buildkitd" --version | awk '{print $3}'); buildkitd $(du -m "$OUT/buildkitd" | cut -f1) MB, buildctl $(du -m "$OUT/buildctl" | cut -f1) MB in $OUT)"

step cleanup
unmount_root
if [[ ${KEEP_WORK:-0} == 1 ]]; then
    done_step "kept $ROOT (KEEP_WORK=1)"
else
    rm -rf --one-file-system "$ROOT" "$ROOT.complete" "$ROOT.deps-done"
    done_step "ok (removed the sid root; log kept: $LOG)"
fi
printf 'buildkit-build: done in %d s\n' "$((SECONDS - TOTAL_START))"
