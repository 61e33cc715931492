#!/usr/bin/env bash
# RERUN throughput: how many fresh jails per second `nsjail -Mr` runs /bin/true in.
# Each run is counted as one line of --run_report (written once per run).
# Usage: bench/rerun.sh [seconds] [extra nsjail flags...]   (run as root)
# Default jail: all namespaces (user, mount, pid, ipc, uts, net, cgroup), --chroot /, /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; shift || true
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$NSJAIL" -Mr --chroot / -Q --run_report "$out/runs.jsonl" "$@" -- /bin/true &
pid=$!
sleep 1   # warm-up, not counted
a=$(wc -l < "$out/runs.jsonl")
sleep "$secs"
b=$(wc -l < "$out/runs.jsonl")
kill -TERM "$pid"; wait "$pid" || true
bad=$(grep -vc '"exit_code":0' "$out/runs.jsonl" || true)
echo "RERUN /bin/true: $(( (b - a) / secs )) runs/s over ${secs} s ($((b - a)) runs; non-zero exits in the whole log: $bad)"
