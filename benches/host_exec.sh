#!/usr/bin/env bash
# `box host-exec`: a host command run from inside a box, against a warm `box run` (goal:
# host-exec within 2x of a warm `box run NAME -- true`), and what the host end costs the
# first start of a box. Prints one markdown table for the README.
#
#   benches/host_exec.sh [ROOTFS.tar]     (as an unprivileged user with subordinate ids)
#
# Rows:
# - `box host-exec true` timed by hyperfine *inside* the box (the host's hyperfine through
#   /run/host, when it runs there), against `box run NAME -- true` timed on the host;
# - `box run NAME -- box host-exec true` against `box run NAME -- true`, both on the
#   host: the difference is what host-exec adds, timed without running anything in a box;
# - the first `box enter` of a created box; with BASELINE=/path/to/older/box, the same
#   with that binary (e.g. a release build of the main branch, without the host end).
#
# Needs: docker-registry, curl, hyperfine, python3, a release build (cargo build
# --release; BOX=/path/to/box, or CARGO_TARGET_DIR, says where it is).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box=${BOX:-${CARGO_TARGET_DIR:-$here/target}/release/box}
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
[ -x "$box" ] || { echo "build first: cargo build --release (no $box)" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine gzip sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-host-exec.XXXXXX)
# HOME is shared with the box: hyperfine inside writes its results there.
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
unset XDG_BIN_HOME
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
mkdir -p "$XDG_CONFIG_HOME/box" && echo 'provision = false' > "$XDG_CONFIG_HOME/box/config.toml"
cleanup() {
  "$box" rm --all --force --yes --time 0 >/dev/null 2>&1 || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 1
image="127.0.0.1:$port/bench/debian:latest"
"$box" pull "$image" >/dev/null 2>&1

ms_digits=2

"$box" create --no-entry --image "$image" warm >/dev/null
"$box" run warm -- box host-exec true
box_run=$(mean run -N --warmup 20 --runs 300 "$box run warm -- true")

# In the box, timed there: the host's hyperfine, through /run/host (same C library as the
# Debian box on a Debian host; skipped when it does not run in the box).
hyperfine_in_box=/run/host$(command -v hyperfine)
if "$box" run warm -- "$hyperfine_in_box" --version >/dev/null 2>&1; then
  "$box" run warm -- "$hyperfine_in_box" -N --style none --warmup 20 --runs 300 \
    --export-json "$HOME/inside.json" "box host-exec true" >/dev/null 2>&1
  mv "$HOME/inside.json" "$work/inside.json"   # the box sees the home, not $work
  row '`box host-exec true`, in the box' "$(ms inside)" '`box run NAME -- true`, warm' "$box_run" '<= 2x the warm run'
else
  echo "the host's hyperfine does not run in the box: in-box row skipped" >&2
fi

run_host_exec=$(mean runhx -N --warmup 20 --runs 300 "$box run warm -- box host-exec true")
added=$(python3 -c "print('%.2f' % ($run_host_exec - $box_run))")
row '`box run NAME -- box host-exec true`' "$run_host_exec" '`box run NAME -- true`, warm' "$box_run" ''
row 'what host-exec adds (difference of the two)' "$added" '`box run NAME -- true`, warm' "$box_run" '<= 2x the warm run'

# First enter of a created box: the host end starts beside the holder. With a baseline,
# the two binaries take turns (three rounds each), so that the load of the machine,
# which drifts, weighs on both alike.
first() {
  local binary=$1 name=$2
  mean "$name" --runs 10 --warmup 2 \
    --prepare "$binary rm --force --yes --time 0 fresh >/dev/null 2>&1; $binary create --no-entry --image $image fresh >/dev/null" \
    "$binary enter fresh -- true"
}
average() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % (sum(v)/len(v)))' "$@"; }
if [ -n "${BASELINE:-}" ]; then
  ours=() theirs=()
  for round in 1 2 3; do
    ours+=("$(first "$box" "first$round")")
    theirs+=("$(first "$BASELINE" "basefirst$round")")
  done
  row '`box enter NAME -- true`, never started' "$(average "${ours[@]}")" "the same, $BASELINE" "$(average "${theirs[@]}")" 'about 1x'
else
  row '`box enter NAME -- true`, never started' "$(first "$box" first)" '' '' ''
fi

echo "| What | box [ms] | Compared with | [ms] | Ratio | Goal |"
echo "|:---|---:|:---|---:|---:|:---|"
printf '%s\n' "${rows[@]}"
