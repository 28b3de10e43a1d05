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

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-export.XXXXXX)
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
unset XDG_BIN_HOME
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
# These figures are about the runtime: no provisioning (benches/provision.sh measures it).
mkdir -p "$XDG_CONFIG_HOME/box" && echo 'provision = false' > "$XDG_CONFIG_HOME/box/config.toml"
chmod 700 "$XDG_RUNTIME_DIR"
cleanup() {
  "$box" rm --all --force --yes >/dev/null 2>&1 || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 1

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
