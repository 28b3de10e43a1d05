#!/usr/bin/env bash
# Pull benchmark: `box pull` of the Debian fixture from a loopback registry into an empty
# store, against the floor measured in the same run (download + gunzip + untar of the same
# blob with curl, gzip and GNU tar, in a user namespace with the same id mapping as box,
# skipping device nodes as box does), against `podman pull` of the same image when podman is
# installed, and an up-to-date `box pull`.
#
# Usage: benches/pull.sh [ROOTFS.tar]   (as an unprivileged user with subordinate ids)
# Needs: docker-registry, curl, hyperfine, gzip, tar, a release build (cargo build --release).
# The rootfs defaults to the cached mmdebstrap tar that `sudo tests/run` builds.
#
# Every run unpacks into a fresh directory: on ext4 without a journal, creating many files
# right after deleting many is slow, which would penalise whichever command runs second.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
runs=${RUNS:-5}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine gzip tar sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-pull.XXXXXX)
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # Stores hold files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 6
layer_digest=$pushed_layer_digest
layer_size=$(stat -c %s "$pushed_layer")

ref="127.0.0.1:$port/bench/debian:latest"
blob_url="http://127.0.0.1:$port/v2/bench/debian/blobs/$layer_digest"
echo "image: $ref, layer $(( layer_size / 1024 / 1024 )) MiB compressed, $(( $(stat -c %s "$rootfs") / 1024 / 1024 )) MiB unpacked" >&2

fresh='d=$(mktemp -d '"$work"'/run.XXXXXX)'
commands=(
  -n floor "$fresh; mkdir \$d/root; curl -fsS $blob_url | gzip -dc | unshare --map-auto --map-root-user tar -x --exclude='./dev/*' -C \$d/root"
  -n "box pull" "$fresh; XDG_DATA_HOME=\$d XDG_RUNTIME_DIR=\$d $box pull $ref >/dev/null 2>&1"
)
if command -v podman >/dev/null; then
  commands+=(-n "podman pull" "$fresh; podman --root \$d/root --runroot \$d/run --storage-driver overlay pull -q --tls-verify=false $ref >/dev/null 2>&1")
fi
# `sync` before every run: each command starts with nothing left to write back from the
# one before (box syncs the filesystem once before it registers a layer, so it would
# otherwise pay for the previous command's writes too).
hyperfine --runs "$runs" --warmup 1 --prepare sync --export-markdown "$work/cold.md" "${commands[@]}" >&2
cat "$work/cold.md"

# Up to date: one manifest request against a store that has the image.
store=$(mktemp -d "$work/warm.XXXXXX")
XDG_DATA_HOME=$store XDG_RUNTIME_DIR=$store "$box" pull "$ref" >/dev/null 2>&1
hyperfine --runs 50 --warmup 3 --export-markdown "$work/warm.md" \
  -n "box pull (up to date)" "XDG_DATA_HOME=$store XDG_RUNTIME_DIR=$store $box pull $ref >/dev/null 2>&1" >&2
tail -n +3 "$work/warm.md"
