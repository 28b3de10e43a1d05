#!/usr/bin/env bash
# Commit benchmark: `box commit` of a provisioned Debian box (a plain minbase image whose
# provisioning installed what it lacks with apt, as at `box create`) against the floor
# measured in the same run: `tar` + the same compressor (gzip -6, zstd -3) over the same
# upper directory (whole, and without the apt caches box leaves out), in a user namespace
# so that every file is readable; and against
# `podman commit` of an equivalent container (the same image, the same apt-get commands
# run in it) when podman is installed (the column is empty otherwise). Before each box
# commit a marker file in the box changes, so every commit makes a new layer: it packs,
# compresses and unpacks the whole layer. (Removing the last one instead, with `box rmi`,
# would time ext4's search for free inodes among the ones just deleted: its
# `recently_deleted` check made the unpack several times slower.) Prints a markdown table
# for the README.
#
# Usage: benches/commit.sh [ROOTFS.tar] [RUNS]   (as an unprivileged user with
# subordinate ids; RUNS defaults to 3; provisioning downloads ~60 MB from the Debian
# mirror, twice with podman)
# Needs: docker-registry, curl, hyperfine, unshare, tar, gzip, zstd, a release build
# (cargo build --release; BOX=path overrides it). PODMAN_RUNTIME=runc picks podman's OCI
# runtime (crun cannot start containers on some VMs' cgroups).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box=${BOX:-$here/target/release/box}
rootfs=${1:-/var/cache/box-tests/debian-bookworm-minbase.tar}
runs=${2:-3}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine unshare tar gzip zstd sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
podman=$(command -v podman || true)
runtime_flag=${PODMAN_RUNTIME:+--runtime $PODMAN_RUNTIME}

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-commit.XXXXXX)
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
cleanup() {
  "$box" rm --all --force --yes >/dev/null 2>&1 || true
  if [ -n "$podman" ]; then
    podman rm --all --force --time 0 >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
  fi
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/bare "$rootfs" 1
image="127.0.0.1:$port/bench/bare:latest"
"$box" pull "$image" >/dev/null 2>&1
echo "provisioning the box (apt from the Debian mirror)..." >&2
"$box" create --no-entry --image "$image" prov >&2
"$box" stop prov >/dev/null 2>&1 || true
upper=$XDG_DATA_HOME/box/containers/prov/upper
size=$(unshare --map-auto --map-root-user du -sm "$upper" | cut -f1)
echo "upper directory: $size MB" >&2

rows=()
for compression in gzip zstd; do
  case $compression in
    gzip) compress="gzip -6 -n" ;;
    zstd) compress="zstd -3 -q" ;;
  esac
  box_ms=$(mean "box-$compression" --runs "$runs" --warmup 1 \
    --prepare "sh -c '$box run --user root prov -- sh -c \"date +%s%N > /etc/bench-marker\" && $box stop prov' >/dev/null" \
    "$box commit prov localhost/bench-commit --compression $compression")
  floor_ms=$(mean "floor-$compression" --runs "$runs" --warmup 1 \
    "unshare --map-auto --map-root-user sh -c 'tar --numeric-owner --xattrs -C $upper -cf - . | $compress > $work/floor.blob'")
  # The same files box packs: without the apt caches it leaves out.
  same_ms=$(mean "same-$compression" --runs "$runs" --warmup 1 \
    "unshare --map-auto --map-root-user sh -c 'tar --numeric-owner --xattrs --exclude=./var/cache/apt --exclude=./var/lib/apt/lists -C $upper -cf - . | $compress > $work/floor.blob'")
  row "\`box commit\` of a provisioned Debian box ($size MB), $compression" "$box_ms" \
    "floor: \`tar | $compress\` of the upper directory" "$floor_ms" '<= 1.2x the floor'
  row "\`box commit\`, $compression" "$box_ms" \
    "floor: the same, without the apt caches box leaves out" "$same_ms" ''
done
layer=$(unshare --map-auto --map-root-user du -sm "$XDG_DATA_HOME/box/layers" | cut -f1)
echo "layers in the store after the last commit: $layer MB" >&2

if [ -n "$podman" ]; then
  log=$XDG_DATA_HOME/box/containers/prov/provision.log
  refresh=$(sed -n 's/^\$ \(apt-get update\)$/\1/p' "$log" | head -n1)
  install=$(sed -n 's/^\$ \(DEBIAN_FRONTEND=.*apt-get install .*\)$/\1/p' "$log" | head -n1)
  podman pull --tls-verify=false -q "$image" >/dev/null
  echo "the same apt-get commands in a podman container..." >&2
  podman $runtime_flag run --network host --name pc "$image" sh -c "$refresh && $install" >/dev/null
  podman_ms=$(mean podman --runs "$runs" --warmup 1 \
    --prepare "podman rmi -f localhost/bench-podman >/dev/null 2>&1 || true" \
    "podman commit -q pc localhost/bench-podman")
  row "\`box commit\`, gzip" "$(ms box-gzip)" "\`podman commit\` of the same changes" "$podman_ms" '<= 0.5x podman'
fi

echo '| What | box [ms] | Compared with | [ms] | Ratio | Goal |'
echo '|:---|---:|:---|---:|---:|:---|'
printf '%s\n' "${rows[@]}"
