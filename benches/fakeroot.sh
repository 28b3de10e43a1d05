#!/usr/bin/env bash
# Fake-root benchmark: the same package install in a Debian box with subordinate ids (a
# real root in the box) and without them (box's fake root: a nested user namespace and
# the seccomp filter that fakes chown/setuid & co.), measured in the same run. The
# workload is the download-free part of an install: `sudo apt-get install --reinstall
# --no-download` of a few packages whose .debs are already in the box's apt cache, so
# dpkg unpacks, chowns and runs maintainer scripts and the network plays no part.
# Prints a markdown table with the ratio for the README.
#
# Usage: sudo benches/fakeroot.sh [USER_WITH_SUBIDS USER_WITHOUT_SUBIDS] [ROOTFS.tar]
#   (root only to run box as the two users; defaults: the test users boxtest and
#   boxnosub that `sudo tests/run` creates). BOX=path/to/box overrides the binary.
# Needs: docker-registry, curl, hyperfine, a release build (cargo build --release), the
# Debian mirror for one `apt-get update` and download per box (outside the timing).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box=${BOX:-$here/target/release/box}
packages=(hello less bc file tree)

# The timed command, run as USER with the environment of DIR (the store, the runtime dir).
install_as() {
  local user=$1 dir=$2
  echo "runuser -u $user -- env HOME=$dir XDG_DATA_HOME=$dir/data XDG_RUNTIME_DIR=$dir/run XDG_CONFIG_HOME=$dir/config" \
    "$box run bench -- sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall --no-download ${packages[*]}"
}

if [ "${1:-}" = __user ]; then
  # As one of the two users: a box with the packages installed and in its apt cache.
  port=$2 dir=$3
  export HOME=$dir XDG_DATA_HOME=$dir/data XDG_RUNTIME_DIR=$dir/run XDG_CONFIG_HOME=$dir/config
  mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
  chmod 700 "$XDG_RUNTIME_DIR"
  cd "$dir"
  image="127.0.0.1:$port/bench/debian:latest"
  "$box" pull "$image" >/dev/null 2>&1
  "$box" create --no-entry --image "$image" bench >/dev/null 2>&1
  "$box" run bench -- sudo apt-get update -qq >/dev/null
  "$box" run bench -- sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "run as root (sudo benches/fakeroot.sh): it runs box as two users" >&2; exit 1; }
with=${1:-boxtest} without=${2:-boxnosub}
rootfs=${3:-/var/cache/box-tests/debian-bookworm.tar}
[ -x "$box" ] || { echo "build first: cargo build --release (or set BOX)" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine gzip sha256sum python3 runuser; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
grep -q "^$with:" /etc/subuid || { echo "$with has no subordinate ids in /etc/subuid" >&2; exit 1; }
! grep -q "^$without:" /etc/subuid || { echo "$without has subordinate ids in /etc/subuid" >&2; exit 1; }

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-fakeroot.XXXXXX)
chmod 755 "$work"
cleanup() {
  for user in "$with" "$without"; do
    runuser -u "$user" -- env XDG_DATA_HOME="$work/$user/data" XDG_RUNTIME_DIR="$work/$user/run" \
      "$box" rm --all --force >/dev/null 2>&1 || true
  done
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 1

for user in "$with" "$without"; do
  mkdir -p "$work/$user"
  chown "$user:" "$work/$user"
  runuser -u "$user" -- "$0" __user "$port" "$work/$user"
done

# Both in one hyperfine run, one after the other, so the machine's state is alike.
hyperfine --runs 15 --warmup 2 --export-markdown "$work/result.md" \
  -n "with subordinate ids (real root): sudo apt-get install --reinstall ${packages[*]}" "$(install_as "$with" "$work/$with")" \
  -n "without (box's fake root): the same" "$(install_as "$without" "$work/$without")" >&2
cat "$work/result.md"
