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
for tool in docker-registry curl hyperfine gzip tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/box-bench-pull.XXXXXX)
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # Stores hold files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

# Push the rootfs as a one-layer gzip image.
gzip -c -6 "$rootfs" > "$work/layer.tar.gz"
layer_digest=sha256:$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
diff_id=sha256:$(sha256sum "$rootfs" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$work/config.json"
config_digest=sha256:$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
upload() { # file digest
  local location
  location=$(curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/bench/debian/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" "$location${sep}digest=$2" >/dev/null
}
upload "$work/layer.tar.gz" "$layer_digest"
upload "$work/config.json" "$config_digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$work/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$work/manifest.json" \
  "http://127.0.0.1:$port/v2/bench/debian/manifests/latest" >/dev/null

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
