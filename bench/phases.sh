#!/usr/bin/env bash
# Where a launch's time goes: the median of each phase of the run report's
# `phases_us` (microseconds) over N runs, for `--chroot /` running /bin/true
# and for the seed config running python3 -c 'print(1+1)'.
# Usage: bench/phases.sh [runs]   (run as root; prints one table)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
one() { # name, args...
  local name=$1; shift
  mkdir -p "$out/$name"
  for i in $(seq "$runs"); do
    "$NSJAIL" --run_report "$out/$name/$i.json" "$@" >/dev/null 2>&1 || true
  done
}
one chroot -Mo --chroot / -Q -- /bin/true
one seed --config examples/tooljet-python-full.cfg -Q -- /usr/bin/python3 -c 'print(1+1)'
python3 - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
cols = {}
for name in ("chroot", "seed"):
    d = os.path.join(out, name)
    docs = [json.load(open(os.path.join(d, f))) for f in os.listdir(d)]
    docs = [d for d in docs if d.get("phases_us")]
    cols[name] = (len(docs), {k: statistics.median(d["phases_us"][k] for d in docs)
                              for k in docs[0]["phases_us"]} if docs else {},
                  statistics.median(d["wall_ms"] for d in docs) if docs else 0)
keys = ["clone_us", "parent_net_us", "cgroup_us", "id_maps_us", "child_wait_us", "ids_us",
        "mounts_us", "child_net_us", "process_us", "seccomp_exec_us", "run_us", "teardown_us"]
print(f"{'phase (median us)':<20}" + "".join(f"{n:>12}" for n in cols))
for k in keys:
    print(f"{k:<20}" + "".join(f"{c[1].get(k, 0):>12.0f}" for c in cols.values()))
print(f"{'runs':<20}" + "".join(f"{c[0]:>12}" for c in cols.values()))
print(f"{'wall_ms (median)':<20}" + "".join(f"{c[2]:>12.1f}" for c in cols.values()))
PY
