#!/usr/bin/env bash
# Start-up cost of a jail, side by side in ONE hyperfine run so the ratios
# are comparable: bare /bin/true, our nsjail, and bubblewrap.
# Usage: bench/startup.sh [runs]   (needs: hyperfine, bubblewrap; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
for t in hyperfine bwrap; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install hyperfine bubblewrap)"; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/r.json" \
  -n bare "/bin/true" \
  -n nsjail "$NSJAIL -Mo --chroot / -Q -- /bin/true" \
  -n bwrap "bwrap --ro-bind / / --unshare-all /bin/true" >/dev/null
python3 - "$out/r.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print("median ms:", ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
ours = med["nsjail"] - med["bare"]; bw = med["bwrap"] - med["bare"]
print(f"added overhead: nsjail {ours:.2f} ms, bwrap {bw:.2f} ms, ratio nsjail/bwrap {ours / bw:.2f}")
PY
