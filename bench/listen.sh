#!/usr/bin/env bash
# LISTEN throughput: connections per second through one nsjail supervisor,
# with C concurrent clients each sending a line and reading the echo until
# the jail exits and the connection closes; plus the supervisor's RSS
# (current and peak) at the end. 127.0.0.1 only, bounded by N.
# Usage: bench/listen.sh [connections=2000] [concurrency=50] [extra nsjail flags...]  (run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}; c=${2:-50}; shift 2 || shift $# || true
cargo build --release -q -p nsjail
NSJAIL=$PWD/target/release/nsjail
log=$(mktemp)
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NSJAIL" -Ml --port "$port" --bindhost 127.0.0.1 --chroot / --max_conns 0 "$@" \
  -- /bin/sh -c 'read l; echo "$l"' 2>"$log" &
pid=$!
for _ in $(seq 100); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port)).close()" 2>/dev/null && break; sleep 0.05; done
python3 - "$port" "$n" "$c" "$pid" <<'PY'
import socket, sys, threading, time
port, n, c, pid = map(int, sys.argv[1:5])
lock = threading.Lock(); left = [n]; bad = [0]
def rss():
    d = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return d["VmRSS"].strip(), d["VmHWM"].strip()
def client(i):
    while True:
        with lock:
            if left[0] == 0: return
            left[0] -= 1
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        msg = b"line %d\n" % i
        s.sendall(msg)
        got = b""
        while True:
            b = s.recv(4096)
            if not b: break
            got += b
        s.close()
        if got != msg:
            with lock: bad[0] += 1
t = time.time()
ts = [threading.Thread(target=client, args=(i,)) for i in range(c)]
[x.start() for x in ts]; [x.join() for x in ts]
el = time.time() - t
cur, peak = rss()
print(f"LISTEN: {n} connections, {c} concurrent, {el:.2f} s -> {n/el:.0f} conn/s; wrong echoes: {bad[0]}; supervisor RSS {cur} (peak {peak})")
PY
