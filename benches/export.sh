#!/usr/bin/env bash
# Export benchmark: an exported wrapper of a small binary (/usr/bin/true in the box)
# against `box run NAME -- /usr/bin/true` and the host's own /usr/bin/true, in one
# hyperfine run so the figures share the machine's state. Goal: the wrapper within 5 ms
# of `box run` (a distrobox export wrapper costs about 137 ms). Prints a markdown table.
#
# Usage: benches/export.sh [ROOTFS.tar]   (as an unprivileged user with subordinate ids;
#        run as root, it re-runs itself as the test user boxtest)
# Needs: docker-registry, curl, hyperfine, gzip, python3, a release build
# (cargo build --release). The rootfs defaults to the cached mmdebstrap tar of the tests.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
runs=${RUNS:-300}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine gzip sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ "$(id -u)" -eq 0 ]; then
  # Rootless is what matters: measure as the test user.
  exec su boxtest -s /bin/bash -c "RUNS=$runs bash $(printf %q "$here/benches/export.sh") $(printf %q "$rootfs")"
fi

work=$(mktemp -d /var/tmp/box-bench-export.XXXXXX)
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
unset XDG_BIN_HOME
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
cleanup() {
  "$box" rm --all --force --yes >/dev/null 2>&1 || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

upload() { # file digest
  local location sep
  location=$(curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/bench/debian/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$location" in http*) ;; *) location="http://127.0.0.1:$port$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$1" "$location${sep}digest=$2" >/dev/null
}
# Push the rootfs as a one-layer gzip image.
gzip -c -1 "$rootfs" > "$work/layer.tar.gz"
layer_digest=sha256:$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
diff_id=sha256:$(sha256sum "$rootfs" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$work/config.json"
config_digest=sha256:$(sha256sum "$work/config.json" | cut -d' ' -f1)
upload "$work/layer.tar.gz" "$layer_digest"
upload "$work/config.json" "$config_digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
  "$config_digest" "$(stat -c %s "$work/config.json")" "$layer_digest" "$(stat -c %s "$work/layer.tar.gz")" > "$work/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$work/manifest.json" \
  "http://127.0.0.1:$port/v2/bench/debian/manifests/latest" >/dev/null

ref="127.0.0.1:$port/bench/debian:latest"
"$box" pull "$ref" >/dev/null 2>&1
"$box" create --no-entry --image "$ref" bench >/dev/null
"$box" export bench --bin /usr/bin/true >/dev/null 2>&1
wrapper=$HOME/.local/bin/true
# Warm the box (holder running, first-start setup done): every command takes the hot path.
"$wrapper"

hyperfine -N --warmup 20 --runs "$runs" --export-markdown "$work/export.md" \
  -n 'exported wrapper ~/.local/bin/true' "$wrapper" \
  -n 'box run NAME -- /usr/bin/true' "$box run bench -- /usr/bin/true" \
  -n 'host /usr/bin/true' "/usr/bin/true" >&2
cat "$work/export.md"
