#!/usr/bin/env bash
# Push benchmark: `box push` of the Debian fixture, pulled into a store from one loopback
# registry, to a second loopback registry, against `skopeo copy` of the same blobs (a
# `dir:` layout whose files are the store's own blobs, so both read the same bytes from the
# same disk and send them unchanged); then a push with nothing new to send (one HEAD),
# against skopeo's, to the same destination.
#
# Usage: benches/push.sh [ROOTFS.tar]   (any user; box as root works too)
# Needs: docker-registry, curl, hyperfine, skopeo, gzip, python3, a release build
# (cargo build --release). The rootfs defaults to the cached mmdebstrap tar of the tests.
#
# Every timed push goes to a repository of its own (named by the time), so every run sends
# every byte: a registry that has a blob in one repository still wants it uploaded into
# another (a mount is another matter, and needs the source in the same registry).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
runs=${RUNS:-10}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine skopeo gzip sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-push.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry source
source_port=$port
pids+=("$registry_pid")
push_rootfs bench/debian "$rootfs" 6
start_registry destination
dest=127.0.0.1:$port
pids+=("$registry_pid")

ref=127.0.0.1:$source_port/bench/debian:latest
store=$work/store
mkdir -p "$store" "$work/run"
chmod 700 "$work/run"
with_store="XDG_DATA_HOME=$store XDG_RUNTIME_DIR=$work/run"
env XDG_DATA_HOME="$store" XDG_RUNTIME_DIR="$work/run" "$box" pull "$ref" >/dev/null 2>&1
blobs=$store/box/blobs/sha256
manifest=$(env XDG_DATA_HOME="$store" XDG_RUNTIME_DIR="$work/run" "$box" images --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["digest"].split(":")[1])')

# skopeo's dir: layout over the store's blobs: manifest.json, a version, a file per blob.
layout=$work/layout
mkdir -p "$layout"
ln -s "$blobs/$manifest" "$layout/manifest.json"
printf 'Directory Transport Version: 1.1\n' > "$layout/version"
python3 - "$blobs/$manifest" "$blobs" "$layout" <<'PY'
import json, os, sys
manifest = json.load(open(sys.argv[1]))
for d in [manifest["config"]] + manifest["layers"]:
    hexdigest = d["digest"].split(":")[1]
    os.symlink(os.path.join(sys.argv[2], hexdigest), os.path.join(sys.argv[3], hexdigest))
PY
size=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(d["size"] for d in [m["config"]]+m["layers"]))' "$layout/manifest.json")
echo "image: $ref, $(( size / 1024 / 1024 )) MiB of blobs, to $dest" >&2

# skopeo remembers where it saw each blob (its blob info cache) and mounts it from there
# next time: without the cache, every run uploads, as box's does.
if [ "$(id -u)" = 0 ]; then
  skopeo_cache=/var/lib/containers/cache
else
  skopeo_cache=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache
fi
forget="rm -f $skopeo_cache/blob-info-cache-v1.boltdb $skopeo_cache/blob-info-cache-v1.sqlite"

fresh='$(date +%s%N)'
hyperfine --runs "$runs" --warmup 1 --export-markdown "$work/push.md" \
  --prepare sync -n "box push" "$with_store $box push $ref $dest/bench/box-$fresh:1 >/dev/null 2>&1" \
  --prepare "sync; $forget" -n "skopeo copy" \
  "skopeo copy --quiet --dest-tls-verify=false dir:$layout docker://$dest/bench/skopeo-$fresh:1 >/dev/null 2>&1" >&2
cat "$work/push.md"

# Nothing new: the destination has the image under that tag already.
env XDG_DATA_HOME="$store" XDG_RUNTIME_DIR="$work/run" "$box" push "$ref" "$dest/bench/again:1" >/dev/null 2>&1
skopeo copy --quiet --dest-tls-verify=false "dir:$layout" "docker://$dest/bench/again-skopeo:1" >/dev/null 2>&1
hyperfine --runs 50 --warmup 3 --export-markdown "$work/again.md" \
  -n "box push (nothing new)" "$with_store $box push $ref $dest/bench/again:1 >/dev/null 2>&1" \
  -n "skopeo copy (nothing new)" "skopeo copy --quiet --dest-tls-verify=false dir:$layout docker://$dest/bench/again-skopeo:1 >/dev/null 2>&1" >&2
tail -n +3 "$work/again.md"
