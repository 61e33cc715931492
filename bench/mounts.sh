#!/usr/bin/env bash
# Start-up cost of the mount tree, side by side in ONE hyperfine run: the
# seed layout (examples/tooljet-python-full.cfg: 13 entries on an empty
# root tmpfs, 2 src_content files, the seccomp policy) against the plain
# `--chroot /` jail (one recursive read-only bind of / + /proc), both
# running /usr/bin/true; the seed also with --experimental_mnt new
# (mount_setattr instead of per-submount remounts). Cgroups are disabled
# so that only the jail set-up is measured.
# Usage: bench/mounts.sh [runs]   (needs: hyperfine; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
command -v hyperfine >/dev/null || { echo "missing hyperfine (apt-get install hyperfine)"; exit 1; }
NOCG="--cgroup_mem_max 0 --cgroup_pids_max 0 --cgroup_cpu_ms_per_sec 0"
SEED="$NSJAIL --config examples/tooljet-python-full.cfg $NOCG"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/r.json" \
  -n bare "/usr/bin/true" \
  -n chroot "$NSJAIL -Mo --chroot / -Q -- /usr/bin/true" \
  -n chroot-new "$NSJAIL -Mo --chroot / -Q --experimental_mnt new -- /usr/bin/true" \
  -n seed "$SEED -- /usr/bin/true" \
  -n seed-new "$SEED --experimental_mnt new -- /usr/bin/true" >/dev/null
python3 - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print("median ms:", ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
add = {k: med[k] - med["bare"] for k in med if k != "bare"}
print("added over bare:", ", ".join(f"{k} {v:.2f}" for k, v in add.items()))
print(f"ratio seed/chroot {add['seed'] / add['chroot']:.2f}, "
      f"seed-new/chroot-new {add['seed-new'] / add['chroot-new']:.2f}")
PY
