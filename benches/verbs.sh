#!/usr/bin/env bash
# Every verb a user waits for, in one run: each against its floor where there is one, and
# against podman and distrobox when they are installed (a peer that is not is skipped).
# Prints one markdown table for the README; each row's command is in its first column.
#
#   benches/verbs.sh [ROOTFS.tar]     (as an unprivileged user with subordinate ids)
#
# Needs: docker-registry, curl, hyperfine, nsenter, python3, a release build
# (cargo build --release). The rootfs defaults to the cached mmdebstrap tar of the tests.
# Peers (optional): podman, distrobox (Debian's packages). The pull has its own script,
# benches/pull.sh (floor: curl | gzip | tar). PODMAN_RUNTIME=runc picks podman's OCI
# runtime where its default (crun) cannot start containers (cgroups in hybrid mode).
#
# It measures box as a desktop session runs it, whatever the machine:
# - under a subreaper that reaps at once (benches/reaper.py), as the session's init
#   does: a box's holder outlives the command that started it, and some machines' PID 1
#   (a VM's minimal init) reaps only every few seconds; the zombies left meanwhile would
#   make every /proc scan (stop, list) slower from one run to the next;
# - with XDG_RUNTIME_DIR on a tmpfs, as /run/user/UID is.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BOX_BENCH_REAPED:-}" ]; then
  BOX_BENCH_REAPED=1 exec python3 "$here/benches/reaper.py" bash "$0" "$@"
fi
box="$here/target/release/box"
rootfs=${1:-/var/cache/box-tests/debian-bookworm.tar}
[ -x "$box" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -r "$rootfs" ] || { echo "no rootfs tar at $rootfs (run sudo tests/run once, or pass one)" >&2; exit 1; }
for tool in docker-registry curl hyperfine nsenter gzip sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
podman=$(command -v podman || true)
distrobox=$(command -v distrobox || true)
runtime_flag=${PODMAN_RUNTIME:+--runtime $PODMAN_RUNTIME}
[ -n "$podman" ] || distrobox=   # distrobox needs an engine

. "$here/benches/lib.sh"
work=$(mktemp -d /var/tmp/box-bench-verbs.XXXXXX)
run_dir=$(mktemp -d /dev/shm/box-bench-run.XXXXXX)
export HOME=$work/home XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$run_dir XDG_CONFIG_HOME=$work/config
unset XDG_BIN_HOME
mkdir -p "$HOME" "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
# The verbs themselves, not apt: provisioning has its own benchmark (benches/provision.sh).
mkdir -p "$XDG_CONFIG_HOME/box" && echo 'provision = false' > "$XDG_CONFIG_HOME/box/config.toml"
cleanup() {
  "$box" rm --all --force --yes --time 0 >/dev/null 2>&1 || true
  if [ -n "$podman" ]; then
    podman rm --all --force --time 0 >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
  fi
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  # The store holds files owned by subordinate ids: remove them from a user namespace.
  unshare --map-auto --map-root-user rm -rf "$work" 2>/dev/null || rm -rf "$work" 2>/dev/null || true
  rm -rf "$run_dir" 2>/dev/null || true
}
trap cleanup EXIT

start_registry
push_rootfs bench/debian "$rootfs" 1
image="127.0.0.1:$port/bench/debian:latest"
"$box" pull "$image" >/dev/null 2>&1
if [ -n "$podman" ]; then
  podman pull --tls-verify=false -q "$image" >/dev/null
fi

# --- create ---------------------------------------------------------------------------
box_create=$(mean create --runs 20 --warmup 2 --prepare "$box rm --force --yes --time 0 c >/dev/null 2>&1 || true" \
  "$box create --no-entry --image $image c")
if [ -n "$podman" ]; then
  podman_create=$(mean pcreate --runs 3 --warmup 0 --prepare "podman rm -f pc >/dev/null 2>&1 || true" \
    "podman $runtime_flag create --network host --name pc $image sh -c 'trap \"exit 0\" TERM; sleep infinity & wait'")
  row '`box create NAME` (Debian image)' "$box_create" '`podman create`' "$podman_create" 'constant, a few ms'
else
  row '`box create NAME` (Debian image)' "$box_create" '' '' 'constant, a few ms'
fi

# --- first enter of a created box, warm run -------------------------------------------
box_first=$(mean first --runs 20 --warmup 2 \
  --prepare "$box rm --force --yes --time 0 fresh >/dev/null 2>&1; $box create --no-entry --image $image fresh >/dev/null" \
  "$box enter fresh -- true")
"$box" create --no-entry --image "$image" warm >/dev/null
"$box" run warm -- true
holder=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$XDG_RUNTIME_DIR/box/warm/state.json")
floor_run=$(mean floor -N --warmup 20 --runs 300 "nsenter --preserve-credentials -U -m -t $holder /bin/true")
box_run=$(mean run -N --warmup 20 --runs 300 "$box run warm -- true")
if [ -n "$podman" ]; then
  podman_first=$(mean pfirst --runs 10 --warmup 1 --prepare "podman stop -t 0 pc >/dev/null 2>&1 || true" \
    "sh -c 'podman $runtime_flag start pc >/dev/null && podman exec pc true'")
  row '`box enter NAME -- true`, never started' "$box_first" '`podman start` + `exec`' "$podman_first" '<= 10x the warm run'
else
  row '`box enter NAME -- true`, never started' "$box_first" '' '' '<= 10x the warm run'
fi
row '`box run NAME -- true`, warm' "$box_run" 'floor: `nsenter -U -m -t PID true`' "$floor_run" '<= 1.2x the floor'
if [ -n "$podman" ]; then
  podman $runtime_flag start pc >/dev/null
  podman_exec=$(mean pexec --runs 30 --warmup 3 "podman exec pc true")
  row '`box run NAME -- true`, warm' "$box_run" '`podman exec NAME true`' "$podman_exec" ''
fi
if [ -n "$distrobox" ]; then
  # distrobox's own first enter installs what it lacks: done once, outside the timing.
  distrobox create --yes --no-entry ${PODMAN_RUNTIME:+--additional-flags "--runtime $PODMAN_RUNTIME"} -i "$image" -n dbx >/dev/null 2>&1 \
    && distrobox enter dbx -- true >/dev/null 2>&1 \
    && { dbx_run=$(mean dbxrun --runs 10 --warmup 1 "distrobox enter dbx -- true")
         row '`box run NAME -- true`, warm' "$box_run" '`distrobox enter NAME -- true`' "$dbx_run" ''; } \
    || echo "distrobox could not create or enter its box; skipped" >&2
fi

# --- exported wrapper -------------------------------------------------------------------
"$box" export warm --bin /usr/bin/true >/dev/null 2>&1
wrapper=$HOME/.local/bin/true
"$wrapper"
box_wrapper=$(mean wrapper -N --warmup 20 --runs 300 "$wrapper")
row 'exported wrapper `~/.local/bin/true`' "$box_wrapper" '`box run NAME -- /usr/bin/true`' "$box_run" '<= 1 ms over `box run`'

# --- stop -------------------------------------------------------------------------------
box_stop=$(mean stop -N --runs 20 --warmup 2 --prepare "$box run warm -- true" "$box stop warm")
if [ -n "$podman" ]; then
  podman_stop=$(mean pstop -N --runs 10 --warmup 1 --prepare "podman $runtime_flag start pc" "podman stop pc")
  row '`box stop NAME`, idle' "$box_stop" '`podman stop NAME`' "$podman_stop" '<= 0.5x podman'
else
  row '`box stop NAME`, idle' "$box_stop" '' '' '<= 0.5x podman'
fi
box_stop_sleep=$(mean stopsleep -N --runs 20 --warmup 2 \
  --prepare "$box run warm -- sh -c 'sleep 1000 >/dev/null 2>&1 &'" "$box stop warm")
row '`box stop NAME`, a background `sleep` in it' "$box_stop_sleep" '`box stop NAME`, idle' "$box_stop" ''
for i in $(seq 1 20); do "$box" create --no-entry --image "$image" "many$i" >/dev/null; done
start_all="for i in \$(seq 1 20); do $box run many\$i -- true; done"
box_stop_all=$(mean stopall -N --runs 10 --warmup 1 --prepare "sh -c '$start_all'" "$box stop --all --yes")
row '`box stop --all`, 20 running boxes' "$box_stop_all" '`box stop NAME`, idle' "$box_stop" '<= 2x one box'
# The kernel's part: the 20 holders SIGKILLed at once and awaited (teardown of 20 mount
# namespaces, which run in turn), against the same for one box.
floor_of() {
  local total=0 ms
  for _ in $(seq 1 10); do
    sh -c "$2"
    ms=$(python3 "$here/benches/teardown_floor.py" $1)
    total=$(python3 -c "print($total + $ms)")
  done
  python3 -c "print('%.1f' % ($total / 10))"
}
floor_all=$(floor_of "$(seq -f 'many%g' 1 20 | tr '\n' ' ')" "$start_all")
floor_one=$(floor_of warm "$box run warm -- true")
"$box" stop warm >/dev/null
row '`box stop --all`, 20 running boxes' "$box_stop_all" 'floor: 20 holders SIGKILLed at once, awaited' "$floor_all" ''
row 'floor: 20 holders SIGKILLed at once, awaited' "$floor_all" 'floor: 1 holder' "$floor_one" ''
"$box" rm --force --yes --time 0 $(seq -f 'many%g' 1 20) >/dev/null

# --- rm ---------------------------------------------------------------------------------
box_rm=$(mean rm --runs 20 --warmup 2 --prepare "$box create --no-entry --image $image gone >/dev/null" \
  "$box rm --yes gone")
if [ -n "$podman" ]; then
  podman_rm=$(mean prm --runs 10 --warmup 1 --prepare "podman $runtime_flag create --network host --name pgone $image true >/dev/null" \
    "podman rm pgone")
  row '`box rm NAME`, stopped' "$box_rm" '`podman rm NAME`' "$podman_rm" ''
else
  row '`box rm NAME`, stopped' "$box_rm" '' '' ''
fi

# --- list -------------------------------------------------------------------------------
"$box" rm --all --force --yes --time 0 >/dev/null
"$box" create --no-entry --image "$image" one >/dev/null
box_list1=$(mean list1 -N --runs 100 --warmup 5 "$box list")
for i in $(seq 2 100); do "$box" create --no-entry --image "$image" "l$i" >/dev/null; done
box_list100=$(mean list100 -N --runs 50 --warmup 5 "$box list")
row '`box list`, 100 boxes' "$box_list100" '`box list`, 1 box' "$box_list1" '<= 2x one box'
if [ -n "$podman" ]; then
  podman_ps=$(mean pps --runs 30 --warmup 3 "podman ps -a")
  row '`box list`, 100 boxes' "$box_list100" '`podman ps -a` (2 containers)' "$podman_ps" ''
fi

echo "| What | box [ms] | Compared with | [ms] | Ratio | Goal |"
echo "|:---|---:|:---|---:|---:|:---|"
printf '%s\n' "${rows[@]}"
