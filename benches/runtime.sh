#!/usr/bin/env bash
# Runtime benchmarks: warm `box run NAME -- true` against the floor measured in the same
# run (util-linux nsenter: a bare setns + exec of /bin/true into the holder's namespaces),
# the first `box enter` of a created, never-started box (holder start + first-start setup),
# `box enter` of a stopped box, `box create` from a pulled image for two image sizes, and
# the disk used by a second box of the same image. Prints markdown tables for the README.
#
# Usage: benches/runtime.sh [ROOTFS.tar]   (as an unprivileged user with subordinate ids)
# Needs: docker-registry, curl, hyperfine, nsenter, busybox (static), a release build
# (cargo build --release). The rootfs defaults to the cached mmdebstrap tar of the tests.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
busybox=$(command -v busybox || true)
for tool in docker-registry curl hyperfine nsenter gzip tar sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -n "$busybox" ] || { echo "missing busybox" >&2; exit 1; }

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-runtime.XXXXXX)
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
# These figures are about the runtime: no provisioning (benches/provision.sh measures it).
mkdir -p "$XDG_CONFIG_HOME/box" && echo 'provision = false' > "$XDG_CONFIG_HOME/box/config.toml"
cleanup() {
  "$box" stop --all >/dev/null 2>&1 || true
  "$box" rm --all --force >/dev/null 2>&1 || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry

# A tiny image: static busybox as /bin/sh and /bin/true.
mkdir -p "$work/tiny/bin" "$work/tiny/etc"
cp "$busybox" "$work/tiny/bin/busybox"
for applet in sh true cat id; do ln -s busybox "$work/tiny/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/tiny/etc/passwd"
printf 'root:x:0:\n' > "$work/tiny/etc/group"
tar -C "$work/tiny" --owner=0 --group=0 -cf "$work/tiny.tar" .
push_rootfs bench/debian "$rootfs" 1
push_rootfs bench/tiny "$work/tiny.tar" 1
debian="127.0.0.1:$port/bench/debian:latest" tiny="127.0.0.1:$port/bench/tiny:latest"
"$box" pull "$debian" >/dev/null 2>&1
"$box" pull "$tiny" >/dev/null 2>&1
size() { du -sh --apparent-size "$1" | cut -f1; }
echo "images: debian $(size "$rootfs"), tiny $(size "$work/tiny.tar") (unpacked tar sizes)" >&2

out=$work/results.md
: > "$out"
# Rows of a hyperfine table; single-command tables lose the meaningless "Relative" column.
table() { tail -n +3 "$1" | sed 's/ | [^|]* |$/ |/' >> "$out"; }

# Warm run against the floor.
"$box" create --no-entry --image "$debian" warm >/dev/null
"$box" run warm -- true
holder=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$XDG_RUNTIME_DIR/box/warm/state.json")
hyperfine -N --warmup 20 --runs 500 --export-markdown "$work/warm.md" \
  -n 'floor: nsenter -U -m -t PID /bin/true' "nsenter --preserve-credentials -U -m -t $holder /bin/true" \
  -n 'box run NAME -- true (warm)' "$box run warm -- true" >&2
echo '| Command | Mean [ms] | Min [ms] | Max [ms] | Relative |'
echo '|:---|---:|---:|---:|---:|'
tail -n +3 "$work/warm.md"
echo

# First enter of a never-started box: a fresh box before every run.
hyperfine --runs 30 --warmup 2 --export-markdown "$work/first.md" \
  --prepare "$box rm --force fresh >/dev/null 2>&1; $box create --no-entry --image $debian fresh >/dev/null" \
  -n 'box enter NAME -- true (never started)' "$box enter fresh -- true" >&2
table "$work/first.md"

# Enter of a stopped box (holder start only, setup already done).
hyperfine --runs 30 --warmup 2 --export-markdown "$work/restart.md" \
  --prepare "$box stop warm >/dev/null" \
  -n 'box enter NAME -- true (stopped)' "$box enter warm -- true" >&2
table "$work/restart.md"

# Create from a pulled image, two sizes.
for image in tiny debian; do
  ref=$tiny
  [ "$image" = debian ] && ref=$debian
  hyperfine --runs 30 --warmup 2 --export-markdown "$work/create-$image.md" \
    --prepare "$box rm --force c >/dev/null 2>&1 || true" \
    -n "box create ($image image, $(size "$work/$([ "$image" = debian ] && echo debian || echo tiny).tar.gz") compressed)" \
    "$box create --no-entry --image $ref c" >&2
  table "$work/create-$image.md"
done

echo '| Command | Mean [ms] | Min [ms] | Max [ms] |'
echo '|:---|---:|---:|---:|'
cat "$out"
echo
# Disk of a second box of the same image, after its first start.
"$box" create --no-entry --image "$debian" second >/dev/null
"$box" run second -- true
du_kib=$(unshare --map-auto --map-root-user du -sk "$XDG_DATA_HOME/box/containers/second" | cut -f1)
layers_kib=$(unshare --map-auto --map-root-user du -sk "$XDG_DATA_HOME/box/layers" | cut -f1)
echo "| disk | KiB |"
echo "|:---|---:|"
echo "| second box of the debian image (containers/NAME after first start) | $du_kib |"
echo "| shared layers of both images | $layers_kib |"
