#!/usr/bin/env bash
# Archive benchmark: `box save` and `box load` of the Debian fixture against `podman save`
# and `podman load` of the same image, in the same run (goal: <= 0.5x podman). Prints one
# markdown table; each row's command is in its first column.
#
#   benches/archive.sh [ROOTFS.tar]
#
# Run it as the user whose figures you want (an unprivileged user with subordinate ids,
# or root): box and podman both run as that user, podman with its overlay driver and its
# storage in a fresh directory of the benchmark. Needs: docker-registry, curl, hyperfine,
# gzip, sha256sum, python3, podman, a release build (cargo build --release). The rootfs
# defaults to the cached mmdebstrap tar that `sudo tests/run` builds; it is pushed to a
# loopback registry as a one-layer gzip image, which box and podman each pull once.
#
# What each side does:
# - save: box copies the store's compressed blobs into the archive; podman's default
#   format (docker-archive) writes the layer uncompressed, as docker does;
# - load: every run into an empty store. `box load` of box's archive unpacks the gzip
#   layer; `podman load` of podman's archive reads the uncompressed layer. The extra row
#   `box load` of podman's archive also compresses that layer for the store (on the
#   second core, alongside the unpacking).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
runs=${RUNS:-5}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine gzip sha256sum python3 podman; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

. "$here/benches/lib.sh"
# Short: podman refuses a run root longer than 50 characters.
work=$(mktemp -d /var/tmp/bxa.XXXXXX)
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # Stores hold files owned by subordinate ids: remove them from a user namespace.
  if [ "$(id -u)" -ne 0 ]; then
    unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || true
  fi
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 6
ref="127.0.0.1:$port/bench/debian:latest"
echo "image: $ref, layer $(( $(stat -c %s "$pushed_layer") / 1024 / 1024 )) MiB compressed, $(( $(stat -c %s "$rootfs") / 1024 / 1024 )) MiB unpacked" >&2

# podman's flags for a storage at $1 (podman wants a run root of at most 50 characters).
pod() { echo "podman --root $1/root --runroot $1/r --storage-driver overlay --events-backend file"; }

# The image, pulled once by each.
store=$work/store
mkdir -p "$store"
boxenv="XDG_DATA_HOME=$store XDG_RUNTIME_DIR=$store"
env XDG_DATA_HOME="$store" XDG_RUNTIME_DIR="$store" "$box" pull "$ref" >/dev/null 2>&1
pstore=$work/p
$(pod "$pstore") pull -q --tls-verify=false "$ref" >/dev/null 2>&1

# Save: to a file, replaced each run.
box_save=$(mean box-save --runs "$runs" --warmup 1 --prepare sync \
  "env $boxenv $box save $ref -o $work/box.tar")
podman_save=$(mean podman-save --runs "$runs" --warmup 1 --prepare sync \
  "rm -f $work/podman.tar; $(pod "$pstore") save -q -o $work/podman.tar $ref")
row "\`box save IMAGE -o FILE\`" "$box_save" "\`podman save -o FILE IMAGE\`" "$podman_save" '<= 0.5x podman'

# Load: each run into a fresh store. `sync` before every run, as in pull.sh: box syncs
# the filesystem once before it registers a layer, and would otherwise pay for the
# writes of the command before it.
fresh='d=$(mktemp -d '"$work"'/l.XXXXXX)'
box_load=$(mean box-load --runs "$runs" --warmup 1 --prepare sync \
  "$fresh; XDG_DATA_HOME=\$d XDG_RUNTIME_DIR=\$d $box load -i $work/box.tar >/dev/null 2>&1")
podman_load=$(mean podman-load --runs "$runs" --warmup 1 --prepare sync \
  "$fresh; $(pod '$d') load -q -i $work/podman.tar >/dev/null 2>&1")
row "\`box load -i FILE\` (box's archive)" "$box_load" "\`podman load -i FILE\` (podman's archive)" "$podman_load" '<= 0.5x podman'
box_load_podman=$(mean box-load-podman --runs "$runs" --warmup 1 --prepare sync \
  "$fresh; XDG_DATA_HOME=\$d XDG_RUNTIME_DIR=\$d $box load -i $work/podman.tar >/dev/null 2>&1")
row "\`box load -i FILE\` (podman's archive: uncompressed layer, compressed for the store)" "$box_load_podman" "\`podman load -i FILE\` (podman's archive)" "$podman_load" ''
podman_load_box=$(mean podman-load-box --runs "$runs" --warmup 1 --prepare sync \
  "$fresh; $(pod '$d') load -q -i $work/box.tar >/dev/null 2>&1")
echo "for comparison: \`podman load -i FILE\` of box's archive: $podman_load_box ms" >&2
echo "archives: box $(( $(stat -c %s "$work/box.tar") / 1024 / 1024 )) MiB, podman $(( $(stat -c %s "$work/podman.tar") / 1024 / 1024 )) MiB" >&2
echo "| What | box [ms] | Compared with | [ms] | Ratio | Goal |"
echo "|:---|---:|:---|---:|---:|:---|"
printf '%s\n' "${rows[@]}"
