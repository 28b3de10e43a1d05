#!/usr/bin/env bash
# Provisioning benchmark: `box create` of a plain minbase Debian image (file checks, then
# the box's own apt-get installs what the image lacks, as root in the box) against the
# floor measured in the same run: the same `apt-get update` and `apt-get install` of the
# same packages (read from box's log) in the same root filesystem, extracted beforehand,
# in a user namespace (unshare + chroot, with /dev, /proc and resolv.conf bound in); and
# against distrobox's first `enter` of the same image (its init installs its packages
# then) when distrobox and podman are installed and BENCH_DISTROBOX=1. Then the warm `box run` of the
# provisioned box against nsenter, and its `box enter` after a stop: entering stays as
# fast as before. Prints markdown tables for the README.
#
# Usage: benches/provision.sh [ROOTFS.tar] [RUNS]   (as an unprivileged user with
# subordinate ids; RUNS defaults to 3: each run downloads ~60 MB from the Debian mirror)
# Needs: docker-registry, curl, hyperfine, nsenter, unshare, a release build (cargo build
# --release; BOX=path overrides it). The rootfs defaults to the plain minbase tar that
# `sudo tests/run` builds.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
box=${BOX:-$here/target/release/box}
rootfs=${1:-/var/cache/box-tests/debian-bookworm-minbase.tar}
runs=${2:-3}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine nsenter unshare gzip tar sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-provision.XXXXXX)
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/config
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
dbx=
cleanup() {
  "$box" rm --all --force >/dev/null 2>&1 || true
  if [ -n "$dbx" ]; then
    distrobox rm --force dbx >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
  fi
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # Files owned by subordinate ids: removed from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/bare "$rootfs" 1
ref="127.0.0.1:$port/bench/bare:latest"
"$box" pull "$ref" >/dev/null 2>&1
out=$work/results.md

# box: create = a record, the file checks, then the steps (apt-get update, apt-get
# install, the user setup marker), the box stopped at the end.
hyperfine --time-unit second --warmup 1 --runs "$runs" --export-markdown "$work/box.md" \
  --prepare "$box rm --force prov >/dev/null 2>&1 || true" \
  -n 'box create (provisioning a minbase Debian image)' \
  "$box create --no-entry --image $ref prov" >&2
log=$XDG_DATA_HOME/box/containers/prov/provision.log
refresh=$(sed -n 's/^\$ \(apt-get update\)$/\1/p' "$log" | head -n1)
install=$(sed -n 's/^\$ \(DEBIAN_FRONTEND=.*apt-get install .*\)$/\1/p' "$log" | head -n1)
[ -n "$refresh" ] && [ -n "$install" ] || { echo "no apt-get commands in $log" >&2; exit 1; }
echo "packages: ${install##*--no-install-recommends }" >&2

# The floor: the same commands in the same root, extracted before each run (not timed).
floor=$work/floor
cat > "$work/floor-prepare.sh" <<SH
rm -rf "$floor" && mkdir "$floor" && tar -C "$floor" --exclude='./dev/*' -xf "$rootfs" && touch "$floor/etc/resolv.conf"
SH
cat > "$work/floor.sh" <<SH
cd "$floor" && mount --rbind /dev dev && mount --rbind /proc proc && mount --bind /etc/resolv.conf etc/resolv.conf &&
  exec env LC_ALL=C chroot . /bin/sh -c '$refresh && $install'
SH
hyperfine --time-unit second --warmup 1 --runs "$runs" --export-markdown "$work/floor.md" \
  --prepare "unshare --map-auto --map-root-user sh $work/floor-prepare.sh" \
  -n 'floor: the same apt-get update + install under unshare + chroot' \
  "unshare --map-auto --map-root-user --mount sh $work/floor.sh" >&2

{
  echo '| What | Mean [s] | Min [s] | Max [s] |'
  echo '|:---|---:|---:|---:|'
  tail -n +3 "$work/floor.md" | sed 's/ | [^|]* |$/ |/'
  tail -n +3 "$work/box.md" | sed 's/ | [^|]* |$/ |/'
} > "$out"

# distrobox's first enter: opt in with BENCH_DISTROBOX=1 (its init installs a long list
# of packages; podman is set to runc and cgroupfs, which rootless podman needs on hosts
# with cgroup v1). A failure or a run over 30 minutes leaves the row out.
if [ "${BENCH_DISTROBOX:-}" = 1 ] && command -v distrobox >/dev/null && command -v podman >/dev/null; then
  dbx=1
  export DBX_CONTAINER_MANAGER=podman DBX_NON_INTERACTIVE=1
  mkdir -p "$XDG_CONFIG_HOME/containers"
  printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
    > "$XDG_CONFIG_HOME/containers/containers.conf"
  podman pull -q --tls-verify=false "$ref" >/dev/null
  hyperfine -i --time-unit second --runs "$runs" --export-markdown "$work/dbx.md" \
    --prepare "distrobox rm --force dbx >/dev/null 2>&1; distrobox create --yes --no-entry -i $ref -n dbx >/dev/null 2>&1" \
    -n "distrobox $(distrobox version 2>/dev/null | grep -o '[0-9.]*' | head -n1) enter (first, podman $(podman --version | grep -o '[0-9.]*$'))" \
    "timeout 1800 distrobox enter dbx -- true" >&2 || true
  [ -s "$work/dbx.md" ] && tail -n +3 "$work/dbx.md" | sed 's/ | [^|]* |$/ |/' >> "$out"
else
  echo "(no distrobox figure: BENCH_DISTROBOX=1 with distrobox and podman installed adds it)" >&2
fi
cat "$out"
echo

# Entering the provisioned box: warm run against nsenter, and a start after a stop.
"$box" run prov -- true
holder=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$XDG_RUNTIME_DIR/box/prov/state.json")
hyperfine --time-unit millisecond -N --warmup 20 --runs 300 --export-markdown "$work/warm.md" \
  -n 'floor: nsenter -U -m -t PID /bin/true' "nsenter --preserve-credentials -U -m -t $holder /bin/true" \
  -n 'box run NAME -- true (warm, provisioned box)' "$box run prov -- true" >&2
hyperfine --time-unit millisecond --runs 30 --warmup 2 --export-markdown "$work/restart.md" \
  --prepare "$box stop prov >/dev/null" \
  -n 'box enter NAME -- true (stopped provisioned box)' "$box enter prov -- true" >&2
echo '| Command | Mean [ms] | Min [ms] | Max [ms] | Relative |'
echo '|:---|---:|---:|---:|---:|'
tail -n +3 "$work/warm.md"
tail -n +3 "$work/restart.md"
