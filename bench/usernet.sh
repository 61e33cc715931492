#!/usr/bin/env bash
# User-mode networking throughput, NSTUN vs pasta (vs the C++ nsjail's NSTUN
# with NSJAIL_REF=/path/to/nsjail): iperf3 TCP from the jail to a server on
# the host's loopback (NSTUN: through a REDIRECT rule to 127.0.0.1; pasta:
# through its gateway, which it maps to the host), and the connection rate
# (connect + one byte back + close, python3 in the jail) the same ways.
# Everything runs inside a throwaway network namespace whose only route
# leads nowhere (a veth pair with both ends inside): no traffic leaves.
# Usage: bench/usernet.sh [seconds=5] [connections=2000]   (run as root; needs iperf3, python3, passt)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; conns=${2:-2000}
for t in iperf3 python3 ip; do command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }; done
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
ns=nsjail-bench-$$
tmp=$(mktemp -d)
cleanup() {
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add ha type veth peer name hb
ip -n "$ns" link set lo up
ip -n "$ns" addr add 198.51.100.1/24 dev ha
ip -n "$ns" link set ha up
ip -n "$ns" link set hb up
ip -n "$ns" route add default via 198.51.100.254 dev ha
in_ns() { ip netns exec "$ns" "$@"; }

# Servers on the namespace's loopback: iperf3, and a one-byte-then-close TCP server.
in_ns iperf3 -s -B 127.0.0.1 -p 5201 -D --logfile "$tmp/iperf3.log"
in_ns python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 5300)); s.listen(1024)
while True:
    c, _ = s.accept(); c.sendall(b"x"); c.close()' &
disown
sleep 0.5

cat > "$tmp/nstun.cfg" <<'EOF'
user_net {
  rule4 { proto: TCP dport: 5201 action: REDIRECT redirect_ip: "127.0.0.1" }
  rule4 { proto: TCP dport: 5300 action: REDIRECT redirect_ip: "127.0.0.1" }
  rule4 { action: DROP }
  rule6 { action: DROP }
}
EOF
cat > "$tmp/pasta.cfg" <<'EOF'
user_net { backend: PASTA pasta { } }
EOF
rate='
import socket, sys, time
n = int(sys.argv[1]); t = time.time(); ok = 0
for i in range(n):
    s = socket.create_connection(("10.255.255.1", 5300), timeout=5)
    ok += s.recv(1) == b"x"; s.close()
print("RATE %.0f %d" % (n / (time.time() - t), ok))'

# run NAME NSJAIL CONFIG: prints "NAME gbps conns/s"
run() {
    local name=$1 bin=$2 cfg=$3
    local j
    j=$(in_ns "$bin" -Q --config "$cfg" -Mo --chroot / -T /tmp -t 120 --rlimit_nofile 1024 \
        -- /usr/bin/iperf3 -c 10.255.255.1 -p 5201 -t "$secs" -J 2>/dev/null || true)
    local gbps
    gbps=$(printf '%s' "$j" | python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("n/a")')
    local r
    r=$(in_ns "$bin" -Q --config "$cfg" -Mo --chroot / -t 120 \
        -- /usr/bin/python3 -c "$rate" "$conns" 2>/dev/null | awk '/^RATE/ {print $2}')
    echo "$name ${gbps} ${r:-n/a}"
}

results=("$(run nstun "$NSJAIL" "$tmp/nstun.cfg")")
if command -v pasta >/dev/null; then
    results+=("$(run pasta "$NSJAIL" "$tmp/pasta.cfg")")
fi
if [ -n "${NSJAIL_REF:-}" ]; then
    results+=("$(run nstun-cxx "$NSJAIL_REF" "$tmp/nstun.cfg")")
fi
printf '%-10s %12s %12s\n' backend "Gbit/s" "conns/s"
for r in "${results[@]}"; do printf '%-10s %12s %12s\n' $r; done
python3 - "${results[@]}" <<'PY'
import sys
rows = {r.split()[0]: r.split()[1:] for r in sys.argv[1:]}
def num(x):
    try: return float(x)
    except ValueError: return None
base = rows.get("nstun")
for other in ("pasta", "nstun-cxx"):
    if other in rows and base:
        for i, what in enumerate(("throughput", "connection rate")):
            a, b = num(base[i]), num(rows[other][i])
            if a and b:
                print(f"ours/{other} {what}: {a / b:.2f}x")
PY
