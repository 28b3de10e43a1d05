#!/usr/bin/env bash
# Benchmark: what an exported wrapper costs over `box run`, and over the host's own
# binary, measured in one hyperfine run (so the three figures share the machine's state).
#
#   benches/export.sh [BOX]        # default box name: box-bench
#
# Run as root, it re-runs itself as the test user boxtest (rootless is what matters).
# The box must exist, or BOX_BENCH_IMAGE must name an image to create it from (for
# example a Debian image pushed to a loopback registry by the test harness). The
# wrapper is exported into a temporary directory and removed afterwards.
#
# Environment: BOX (the box binary; default target/release/box, then target/debug/box),
# BOX_BENCH_USER (default boxtest), BOX_BENCH_IMAGE, BOX_BENCH_RUNS (default 200).
# Goal (issue): the wrapper within 5 ms of `box run` (distrobox's wrapper costs 137 ms).
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
name=${1:-box-bench}
user=${BOX_BENCH_USER:-boxtest}
runs=${BOX_BENCH_RUNS:-200}

if [[ -z ${BOX:-} ]]; then
    for candidate in "$here/target/release/box" "$here/target/debug/box"; do
        if [[ -x $candidate ]]; then BOX=$candidate; break; fi
    done
fi
[[ -n ${BOX:-} && -x $BOX ]] || { echo "export.sh: build box first (cargo build --release)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "export.sh: hyperfine is not installed" >&2; exit 1; }

if [[ $(id -u) -eq 0 && $user != root ]]; then
    # su gives a clean login environment; pass on what the script needs.
    exec su "$user" -s /bin/bash -c "BOX=$(printf %q "$BOX") BOX_BENCH_USER=$user BOX_BENCH_RUNS=$runs BOX_BENCH_IMAGE=$(printf %q "${BOX_BENCH_IMAGE:-}") bash $(printf %q "$here/benches/export.sh") $(printf %q "$name")"
fi

if ! "$BOX" list --json | grep -q "\"name\": *\"$name\""; then
    [[ -n ${BOX_BENCH_IMAGE:-} ]] || { echo "export.sh: no box $name; set BOX_BENCH_IMAGE to create it" >&2; exit 1; }
    "$BOX" create --yes --no-entry --image "$BOX_BENCH_IMAGE" "$name"
fi

bindir=$(mktemp -d)
cleanup() {
    "$BOX" export "$name" --delete --bin /usr/bin/true >/dev/null 2>&1 || true
    rm -rf "$bindir"
}
trap cleanup EXIT

"$BOX" export "$name" --bin /usr/bin/true --export-path "$bindir" --force
# Warm the box (holder running) so every command measures the hot path.
"$BOX" run "$name" -- /usr/bin/true

hyperfine --shell=none --warmup 20 --runs "$runs" \
    --command-name "exported wrapper" "$bindir/true" \
    --command-name "box run $name -- /usr/bin/true" "$BOX run $name -- /usr/bin/true" \
    --command-name "host /usr/bin/true" "/usr/bin/true"
