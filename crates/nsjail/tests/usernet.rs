//! User-mode networking (`user_net`): nsjail's own configs under `--check`,
//! and the PASTA backend end to end.
//!
//! No traffic leaves this machine: every test that starts a network makes
//! its own network namespace (`ip netns add`) whose only interface is a
//! veth pair with both ends inside it (`ha` 198.51.100.1/24, TEST-NET-2)
//! and a default route to 198.51.100.254, an address nobody has; nsjail
//! runs inside it (`ip netns exec`), and so does every server. pasta NATs
//! from that namespace, so the jail reaches 198.51.100.1 and nothing else.
//! The namespace is deleted in `Drop` and checked gone; pasta's pid (from
//! nsjail's "pasta_pid=N" line) is checked gone after each run.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{root_or_skip, run_env, skip, test_name, NSJAIL};

fn fixtures() -> Vec<PathBuf> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/tests/fixtures");
    let mut v = Vec::new();
    for d in ["nsjail-head", "nsjail-3.6"] {
        for e in std::fs::read_dir(base.join(d)).expect("fixtures") {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "cfg") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// `nsjail --check` accepts every config of nsjail (HEAD and 3.6) that uses
/// `user_net`, and shows the effective user network.
#[test]
fn every_nsjail_user_net_config_passes_check() {
    let all = fixtures();
    assert_eq!(all.len(), 32, "{all:?}");
    for f in all {
        let f = f.to_string_lossy().into_owned();
        let o = run_env(
            &["--check", "--config", &f, "--", "/bin/true"],
            &[],
            Duration::from_secs(30),
        );
        assert_eq!(o.code, Some(0), "{f}: {}", o.stderr);
        assert!(
            o.stdout.contains("user network: NSTUN") || o.stdout.contains("user network: PASTA"),
            "{f}: {}",
            o.stdout
        );
    }
}

/// A pasta that cannot be found: one line naming the package, nothing run.
#[test]
fn missing_pasta_is_one_line_naming_passt() {
    if !root_or_skip(&test_name()) {
        return;
    }
    let o = run_env(
        &[
            "-Mo",
            "--chroot",
            "/",
            "--use_pasta",
            "--",
            "/bin/echo",
            "RAN",
        ],
        &[("NSJAIL_PASTA_PATH", "/nonexistent/pasta")],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("RAN"), "{o:?}");
    let lines: Vec<&str> = o.stderr.lines().filter(|l| l.contains("passt")).collect();
    assert_eq!(lines.len(), 1, "{}", o.stderr);
    assert!(lines[0].contains("NSJAIL_PASTA_PATH"), "{}", lines[0]);
    let o = run_env(
        &[
            "-Mo",
            "--chroot",
            "/",
            "--use_pasta",
            "--",
            "/bin/echo",
            "RAN",
        ],
        &[("PATH", "/nonexistent")],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(255), "{o:?}");
    let lines: Vec<&str> = o.stderr.lines().filter(|l| l.contains("passt")).collect();
    assert_eq!(lines.len(), 1, "{}", o.stderr);
    assert!(lines[0].contains("not installed"), "{}", lines[0]);
}

/// The throwaway network namespace (see the module doc).
struct TestNet {
    name: String,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip")
}

impl TestNet {
    fn new(tag: &str) -> Option<TestNet> {
        if !root_or_skip(&test_name()) {
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            skip("iproute2's 'ip' is not installed (apt-get install iproute2)");
            return None;
        }
        let name = format!("nsju-{}-{tag}", std::process::id());
        if !ip(&["netns", "add", &name]).status.success() {
            skip("'ip netns add' failed");
            return None;
        }
        let net = TestNet { name };
        for args in [
            &["link", "add", "ha", "type", "veth", "peer", "name", "hb"][..],
            &["link", "set", "lo", "up"],
            &["addr", "add", "198.51.100.1/24", "dev", "ha"],
            &["link", "set", "ha", "up"],
            &["link", "set", "hb", "up"],
            &[
                "route",
                "add",
                "default",
                "via",
                "198.51.100.254",
                "dev",
                "ha",
            ],
        ] {
            let mut a = vec!["-n", net.name.as_str()];
            a.extend_from_slice(args);
            let o = ip(&a);
            assert!(o.status.success(), "ip {a:?}: {o:?}");
        }
        Some(net)
    }

    /// Wait (2 s) until no process is left in the namespace: nsjail, its
    /// NSTUN network process, pasta and the servers are all gone.
    fn assert_empty(&self) {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let o = ip(&["netns", "pids", &self.name]);
            let left = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < until,
                "processes left in the namespace: {left}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let pids = ip(&["netns", "pids", &self.name]).stdout;
        for p in String::from_utf8_lossy(&pids)
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on pids of the test's own namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let _ = ip(&["netns", "del", &self.name]);
        let left = String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).into_owned();
        if !std::thread::panicking() {
            assert!(!left.contains(&self.name), "namespace left behind: {left}");
        }
    }
}

fn have_pasta() -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v pasta"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip("pasta is not installed (apt-get install passt)");
    }
    ok
}

/// A one-shot TCP server in the namespace (python3): prints what it got
/// and answers `PONG`.
fn server(net: &TestNet, port: u16) -> Child {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('198.51.100.1',{port}))\ns.listen(1)\nprint('LISTENING',flush=True)\n\
         s.settimeout(15)\nc,a=s.accept()\nd=c.recv(100)\nc.sendall(b'PONG')\nc.close()\n\
         print('GOT',d.decode(),'FROM',a[0],flush=True)\n"
    );
    let mut c = net
        .command(&["timeout", "20", "/usr/bin/python3", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "LISTENING");
    c.stdout = Some(out.into_inner());
    c
}

/// nsjail in the namespace, stderr followed; `pasta_pid` from its log.
struct Jail {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Jail {
    fn start(net: &TestNet, args: &[&str]) -> Jail {
        let mut cmd = vec![NSJAIL];
        cmd.extend_from_slice(args);
        let mut child = net
            .command(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nsjail");
        let se = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(se).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Jail {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Wait up to 10 s for a line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> Option<String> {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(50)) {
                self.seen.push(l.clone());
                if l.contains(needle) {
                    return Some(l);
                }
            }
        }
        None
    }

    /// Exit code, stdout, stderr (20 s limit).
    fn finish(mut self) -> (Option<i32>, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("nsjail did not finish: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        let mut out = String::new();
        let _ = self.child.stdout.take().unwrap().read_to_string(&mut out);
        (status.code(), out, self.seen.join("\n"))
    }
}

fn pasta_pid(line: &str) -> i32 {
    line.rsplit("pasta_pid=")
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pasta pid in {line}"))
}

/// Gone, or a zombie nobody will reap: never. Waits up to 2 s.
fn process_gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn free_port() -> u16 {
    // Any port number is free in a fresh namespace; pick one that differs
    // per test process.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// nsjail 3.6's README config (`user_net { enable: true ip gw ip6 gw6
/// tcp_ports: "80,443" enable_dns }`) through pasta: the jail gets
/// 10.255.255.2 on eth0 and connects (NAT) to a server of the namespace;
/// pasta is gone afterwards.
#[test]
fn pasta_readme_36_config_reaches_a_server_through_nat() {
    let Some(net) = TestNet::new("readme") else {
        return;
    };
    if !have_pasta() {
        return;
    }
    let port = free_port();
    let mut srv = server(&net, port);
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/fixtures/nsjail-3.6/README-user_net.cfg");
    let cfg = cfg.to_string_lossy().into_owned();
    let script = format!(
        "ip -4 -o addr show dev eth0; \
         exec 3<>/dev/tcp/198.51.100.1/{port}; echo -n PING >&3; head -c 4 <&3; echo"
    );
    let mut j = Jail::start(
        &net,
        &[
            "-Mo",
            "--chroot",
            "/",
            "--config",
            &cfg,
            "--",
            "/bin/bash",
            "-c",
            &script,
        ],
    );
    let line = j.wait_for("pasta_pid=").expect("pasta started");
    let pid = pasta_pid(&line);
    let (code, out, err) = j.finish();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("10.255.255.2/24"), "{out}");
    let _ = srv.kill();
    net.assert_empty();
    assert!(out.contains("PONG"), "{out}\n{err}");
    let mut got = String::new();
    srv.stdout.take().unwrap().read_to_string(&mut got).unwrap();
    let _ = srv.wait();
    // pasta NATs: the server sees the namespace's own address, not the jail's.
    assert!(got.contains("GOT PING FROM 198.51.100.1"), "{got}");
    assert!(process_gone(pid), "pasta {pid} left behind");
}

/// pasta dying mid-run kills the jail with one clear line; nothing is left.
#[test]
fn pasta_dying_kills_the_jail() {
    let Some(net) = TestNet::new("die") else {
        return;
    };
    if !have_pasta() {
        return;
    }
    let start = Instant::now();
    let mut j = Jail::start(
        &net,
        &[
            "-Mo",
            "--chroot",
            "/",
            "--use_pasta",
            "--",
            "/bin/sleep",
            "30",
        ],
    );
    let line = j.wait_for("pasta_pid=").expect("pasta started");
    let pid = pasta_pid(&line);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the pasta this test's jail started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let (code, _out, err) = j.finish();
    assert!(start.elapsed() < Duration::from_secs(15), "{err}");
    assert_eq!(code, Some(137), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("exited unexpectedly"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&format!("Pasta process {pid}")),
        "{}",
        lines[0]
    );
    assert!(process_gone(pid));
}

/// Current nsjail's `tests/pasta-nat.cfg` (backend PASTA) runs too.
#[test]
fn pasta_current_schema_config_runs() {
    let Some(net) = TestNet::new("cur") else {
        return;
    };
    if !have_pasta() {
        return;
    }
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/fixtures/nsjail-head/tests-pasta-nat.cfg");
    let cfg = cfg.to_string_lossy().into_owned();
    let mut j = Jail::start(
        &net,
        &[
            "--config",
            &cfg,
            "--",
            "/bin/sh",
            "-c",
            "ip -o -4 route show default",
        ],
    );
    let line = j.wait_for("pasta_pid=").expect("pasta started");
    let pid = pasta_pid(&line);
    let (code, out, err) = j.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("default via 10.255.255.1 dev eth0"),
        "{out}\n{err}"
    );
    assert!(process_gone(pid));
}

// ------------------------------------------------------------------ NSTUN

/// Servers for the NSTUN tests, run inside the test namespace (python3):
/// `echo PORT` (TCP and UDP echo on every address, IPv4 and IPv6; each TCP
/// connection's peer logged), `hold PORT` (TCP, keeps connections open),
/// `tag PORT HOST TEXT` (TCP: sends TEXT, reads the client's line, closes), `socks5 PORT`, and
/// `connect PORT` (HTTP CONNECT); proxies log each target. One line
/// `READY` when listening.
const SERVERS: &str = r#"
import socket, sys, threading, select
def log(*a): print(*a, flush=True)
def tcp(host, port):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(512); return s
def relay(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 10)
            if not r: return
            for x in r:
                d = x.recv(65536)
                if not d: return
                (b if x is a else a).sendall(d)
    except OSError: pass
    finally: a.close(); b.close()
def echo_tcp(c, a):
    log('TCP', a[0])
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
    except OSError: pass
    c.close()
def serve(s, fn):
    while True:
        c, a = s.accept(); threading.Thread(target=fn, args=(c, a), daemon=True).start()
def udp_echo(s):
    while True:
        d, a = s.recvfrom(65536); s.sendto(d, a)
def socks5(c, a):
    try:
        c.recv(3); c.sendall(b'\x05\x00'); h = c.recv(4)
        if h[3] == 1: ip = socket.inet_ntop(socket.AF_INET, c.recv(4)); fam = socket.AF_INET
        else: ip = socket.inet_ntop(socket.AF_INET6, c.recv(16)); fam = socket.AF_INET6
        port = int.from_bytes(c.recv(2), 'big')
        if h[1] == 3:
            r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(('127.0.0.1', 0))
            c.sendall(b'\x05\x00\x00\x01' + socket.inet_aton('127.0.0.1') + r.getsockname()[1].to_bytes(2, 'big'))
            r.settimeout(10)
            while True:
                d, peer = r.recvfrom(65536)
                if d[3] == 1: dst = socket.inet_ntop(socket.AF_INET, d[4:8]); dp = int.from_bytes(d[8:10], 'big'); body = d[10:]
                else: dst = socket.inet_ntop(socket.AF_INET6, d[4:20]); dp = int.from_bytes(d[20:22], 'big'); body = d[22:]
                log('SOCKS5-UDP', dst, dp)
                o = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM); o.settimeout(3)
                o.sendto(body, (dst, dp)); back = o.recv(65536)
                r.sendto(d[:len(d) - len(body)] + back, peer)
        log('SOCKS5', ip, port)
        u = socket.create_connection((ip, port)); c.sendall(b'\x05\x00\x00\x01' + bytes(6)); relay(c, u)
    except OSError: c.close()
def connect(c, a):
    try:
        req = b''
        while b'\r\n\r\n' not in req: req += c.recv(1)
        target = req.split()[1].decode(); log('CONNECT', target)
        host, port = target.rsplit(':', 1)
        u = socket.create_connection((host.strip('[]'), int(port)))
        c.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n'); relay(c, u)
    except OSError: c.close()
kind, port = sys.argv[1], int(sys.argv[2])
if kind == 'echo':
    for h in ['198.51.100.1', 'fd00::1']:
        threading.Thread(target=serve, args=(tcp(h, port), echo_tcp), daemon=True).start()
        u = socket.socket(socket.AF_INET6 if ':' in h else socket.AF_INET, socket.SOCK_DGRAM); u.bind((h, port))
        threading.Thread(target=udp_echo, args=(u,), daemon=True).start()
elif kind == 'hold':
    held = []
    def keep(c, a): held.append(c)
    threading.Thread(target=serve, args=(tcp('198.51.100.1', port), keep), daemon=True).start()
elif kind == 'tag':
    text = sys.argv[4].encode()
    def tag(c, a):
        c.sendall(text)
        try: c.settimeout(3); c.recv(100)
        except OSError: pass
        c.close()
    threading.Thread(target=serve, args=(tcp(sys.argv[3], port), tag), daemon=True).start()
elif kind in ('socks5', 'connect'):
    threading.Thread(target=serve, args=(tcp('127.0.0.1', port), socks5 if kind == 'socks5' else connect), daemon=True).start()
log('READY')
import time; time.sleep(30)
"#;

/// The jail's client (python3): each argument `PROTO:HOST:PORT[:TIMEOUT]`
/// (`tcp`, `udp`, `ping`) prints `PROTO HOST PORT -> RESULT`, RESULT being
/// what the peer sent back, `REFUSED`, `TIMEOUT` or the error.
const CLIENT: &str = r#"
import socket, sys, os, struct
def res(spec):
    proto, rest = spec.split(':', 1)
    host, port = rest.rsplit(':', 1) if proto != 'ping' else (rest, '0')
    t = 3.0
    if host.count(':') == 0 and ':' in port: pass
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    try:
        if proto == 'tcp':
            s = socket.socket(fam); s.settimeout(t); s.connect((host, int(port)))
            s.sendall(b'hello'); d = s.recv(100); s.close(); return d.decode() or 'EOF'
        if proto == 'udp':
            s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(t); s.connect((host, int(port)))
            s.send(b'dgram'); return s.recv(100).decode()
        if proto == 'ping':
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(t)
            body = struct.pack('!BBHHH', 8, 0, 0, 0x1234, 1) + b'pingdata'
            c = sum(struct.unpack('!%dH' % (len(body) // 2), body)); c = (c >> 16) + (c & 0xffff); c = ~(c + (c >> 16)) & 0xffff
            body = body[:2] + struct.pack('!H', c) + body[4:]
            s.sendto(body, (host, 0))
            while True:
                d = s.recv(200); ihl = (d[0] & 15) * 4
                if d[ihl] == 0 and d[ihl+4:ihl+6] == b'\x12\x34': return 'PONG ' + d[ihl+8:].decode()
    except ConnectionRefusedError: return 'REFUSED'
    except socket.timeout: return 'TIMEOUT'
    except OSError as e: return 'ERR ' + str(e)
for a in sys.argv[1:]:
    print(a, '->', res(a), flush=True)
"#;

fn have_python() -> bool {
    let ok = std::path::Path::new("/usr/bin/python3").exists();
    if !ok {
        skip("/usr/bin/python3 is not installed (apt-get install python3)");
    }
    ok
}

impl TestNet {
    /// [`TestNet::new`] plus fd00::1/64 on `ha`, and `/dev/net/tun`.
    fn nstun(tag: &str) -> Option<TestNet> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            if root_or_skip(&test_name()) {
                skip("/dev/net/tun is missing (CONFIG_TUN)");
            }
            return None;
        }
        let net = TestNet::new(tag)?;
        let o = ip(&[
            "-n",
            &net.name,
            "addr",
            "add",
            "fd00::1/64",
            "dev",
            "ha",
            "nodad",
        ]);
        assert!(o.status.success(), "{o:?}");
        if !have_python() {
            return None;
        }
        Some(net)
    }

    /// One of [`SERVERS`] in the namespace, READY.
    fn server(&self, args: &[&str]) -> Child {
        let mut cmd = vec!["timeout", "40", "/usr/bin/python3", "-c", SERVERS];
        cmd.extend_from_slice(args);
        let mut c = self
            .command(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a server");
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "READY", "server {args:?}");
        c.stdout = Some(out.into_inner());
        c
    }

    /// nsjail with `user_net` from `cfg` (text config) running the client
    /// with `targets`; (code, stdout, stderr, run report).
    fn jail_client(
        &self,
        cfg: &str,
        extra: &[&str],
        targets: &[String],
    ) -> (Option<i32>, String, String, String) {
        let cfgf = common::temp_path("nstun.cfg");
        std::fs::write(&cfgf, cfg).unwrap();
        let report = common::temp_path("nstun-report.json");
        let (c, r) = (
            cfgf.to_string_lossy().into_owned(),
            report.to_string_lossy().into_owned(),
        );
        let mut args = vec![
            "--config",
            &c,
            "-Mo",
            "--chroot",
            "/",
            "-t",
            "30",
            "--run_report",
            &r,
        ];
        args.extend_from_slice(extra);
        args.extend(["--", "/usr/bin/python3", "-c", CLIENT]);
        args.extend(targets.iter().map(String::as_str));
        let (code, out, err) = Jail::start(self, &args).finish();
        let rep = std::fs::read_to_string(&report).unwrap_or_default();
        let _ = std::fs::remove_file(&cfgf);
        let _ = std::fs::remove_file(&report);
        (code, out, err, rep)
    }
}

fn kill_server(mut c: Child) -> String {
    // SIGTERM: `timeout` passes it on to the server (SIGKILL would not).
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let _ = c.wait();
    let mut s = String::new();
    let _ = c.stdout.take().unwrap().read_to_string(&mut s);
    s
}

fn result_of<'a>(out: &'a str, target: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{target} -> ")))
        .unwrap_or_else(|| panic!("no result for {target} in:\n{out}"))
}

fn report_net(rep: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(rep).unwrap_or_else(|e| panic!("{e}: {rep}"));
    v["net"].clone()
}

/// NAT to an address routable from nsjail's namespace: TCP, UDP and ICMP
/// echo, IPv4 and IPv6; the server sees nsjail's namespace as the peer;
/// the run report counts the flows and bytes.
#[test]
fn nstun_nats_tcp_udp_and_icmp_over_ipv4_and_ipv6() {
    let Some(net) = TestNet::nstun("nat") else {
        return;
    };
    let port = free_port();
    let srv = net.server(&["echo", &port.to_string()]);
    let t = [
        format!("tcp:198.51.100.1:{port}"),
        format!("tcp:fd00::1:{port}"),
        format!("udp:198.51.100.1:{port}"),
        format!("udp:fd00::1:{port}"),
        "ping:198.51.100.1".to_string(),
    ];
    let (code, out, err, rep) = net.jail_client("user_net { }\n", &["--keep_caps"], &t);
    let log = kill_server(srv);
    net.assert_empty();
    assert_eq!(code, Some(0), "{out}\n{err}");
    for target in &t[..4] {
        let want = if target.starts_with("tcp") {
            "hello"
        } else {
            "dgram"
        };
        assert_eq!(result_of(&out, target), want, "{target}\n{err}");
    }
    assert_eq!(result_of(&out, &t[4]), "PONG pingdata", "{err}");
    // NAT: the peer is the namespace's own address, not the jail's.
    assert!(
        log.contains("TCP 198.51.100.1") && log.contains("TCP fd00::1"),
        "{log}"
    );
    assert!(!log.contains("10.255.255.2"), "{log}");
    let n = report_net(&rep);
    assert!(n["flows_opened"].as_u64().unwrap() >= 5, "{n}");
    assert_eq!(n["flows_refused"].as_u64(), Some(0), "{n}");
    // 2 x "hello" + 2 x "dgram" + the echo request, each way.
    assert!(n["bytes_out"].as_u64().unwrap() >= 20, "{n}");
    assert!(n["bytes_in"].as_u64().unwrap() >= 20, "{n}");
}

/// Each action, first match wins, and the SSRF gate's consequence: the
/// gateway address is NAT'd like any other (it does not reach the
/// namespace's loopback), only a rule does.
#[test]
fn nstun_rule_actions_in_first_match_order() {
    let Some(net) = TestNet::nstun("rules") else {
        return;
    };
    let port = free_port();
    let (p, lo) = (port, port.wrapping_add(1).max(1024));
    let echo = net.server(&["echo", &p.to_string()]);
    let tag = net.server(&["tag", &lo.to_string(), "127.0.0.1", "LOOPBACK"]);
    let cfg = format!(
        r#"user_net {{
            rule4 {{ proto: TCP dport: 7001 action: REDIRECT redirect_ip: "127.0.0.1" redirect_port: {lo} }}
            rule4 {{ proto: TCP dport: 7002 dport_end: 7004 action: REJECT }}
            rule4 {{ proto: TCP dport: 7003 action: ALLOW }}
            rule4 {{ proto: TCP dport: 7005 action: DROP }}
            rule4 {{ proto: UDP dport: 7006 action: REJECT }}
            rule4 {{ proto: TCP dport: 7007 action: REDIRECT redirect_port: {p} }}
            rule4 {{ proto: TCP dst_ip: "198.51.100.0/24" dport: {p} action: ALLOW }}
            rule4 {{ action: DROP }}
            rule6 {{ action: REJECT }}
        }}"#
    );
    let t = [
        "tcp:198.51.100.9:7001".to_string(),
        "tcp:198.51.100.1:7003".to_string(),
        "tcp:198.51.100.1:7005".to_string(),
        "udp:198.51.100.1:7006".to_string(),
        "tcp:198.51.100.1:7007".to_string(),
        format!("tcp:198.51.100.1:{p}"),
        format!("tcp:10.255.255.1:{lo}"),
        format!("tcp:fd00::1:{p}"),
    ];
    let (code, out, err, rep) = net.jail_client(&cfg, &[], &t);
    kill_server(echo);
    kill_server(tag);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        result_of(&out, &t[0]),
        "LOOPBACK",
        "REDIRECT to loopback\n{err}"
    );
    assert_eq!(
        result_of(&out, &t[1]),
        "REFUSED",
        "REJECT before the later ALLOW"
    );
    assert_eq!(result_of(&out, &t[2]), "TIMEOUT", "DROP");
    assert_eq!(
        result_of(&out, &t[3]),
        "REFUSED",
        "UDP REJECT: port unreachable"
    );
    assert_eq!(result_of(&out, &t[4]), "hello", "REDIRECT of the port only");
    assert_eq!(result_of(&out, &t[5]), "hello", "ALLOW");
    // The catch-all DROP: the gateway address reaches nothing.
    assert_eq!(result_of(&out, &t[6]), "TIMEOUT");
    assert_eq!(result_of(&out, &t[7]), "REFUSED", "rule6 REJECT");
    let n = report_net(&rep);
    assert!(n["flows_refused"].as_u64().unwrap() >= 5, "{n}");
}

/// Without rules, the gateway address is NAT'd from nsjail's namespace: it
/// does not reach a service on the namespace's loopback (nsjail's SSRF
/// gate keeps loopback for operator rules).
#[test]
fn nstun_gateway_does_not_reach_host_loopback() {
    let Some(net) = TestNet::nstun("gw") else {
        return;
    };
    let lo = free_port();
    let tag = net.server(&["tag", &lo.to_string(), "127.0.0.1", "LOOPBACK"]);
    let t = [format!("tcp:10.255.255.1:{lo}")];
    let (code, out, err, _) = net.jail_client("user_net { }\n", &[], &t);
    kill_server(tag);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let r = result_of(&out, &t[0]);
    assert!(
        r != "LOOPBACK" && (r == "TIMEOUT" || r == "REFUSED" || r.starts_with("ERR")),
        "{r}"
    );
}

/// HOST_TO_GUEST: a connection (TCP) or a datagram (UDP) to the
/// namespace's 127.0.0.1:PORT reaches a server in the jail, which sees the
/// gateway as the peer; the UDP answer goes back to the host client.
#[test]
fn nstun_host_to_guest_forwarding() {
    let Some(net) = TestNet::nstun("fwd") else {
        return;
    };
    let port = free_port();
    let uport = port.wrapping_add(1).max(1024);
    let cfg = format!(
        "user_net {{\n\
         rule4 {{ direction: HOST_TO_GUEST action: REDIRECT proto: TCP src_ip: \"127.0.0.1\" dport: {port} redirect_port: 8000 }}\n\
         rule4 {{ direction: HOST_TO_GUEST action: REDIRECT proto: UDP src_ip: \"127.0.0.1\" dport: {uport} redirect_port: 8001 }}\n}}\n"
    );
    let cfgf = common::temp_path("fwd.cfg");
    std::fs::write(&cfgf, cfg).unwrap();
    let c = cfgf.to_string_lossy().into_owned();
    let jail_srv = "import socket\n\
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('0.0.0.0',8001))\n\
s=socket.socket(); s.bind(('0.0.0.0',8000)); s.listen(1)\n\
c,a=s.accept(); c.sendall(b'FROM-JAIL '+a[0].encode()); c.close()\n\
d,a=u.recvfrom(100); u.sendto(b'UDP-JAIL '+d+b' '+a[0].encode(),a)\n";
    let mut j = Jail::start(
        &net,
        &[
            "--config",
            &c,
            "-Mo",
            "--chroot",
            "/",
            "-t",
            "20",
            "--",
            "/usr/bin/python3",
            "-c",
            jail_srv,
        ],
    );
    assert!(
        j.wait_for("for inbound UDP redirection").is_some(),
        "{:?}",
        j.seen
    );
    let client = format!(
        "import socket,time\n\
for i in range(100):\n  try:\n    s=socket.create_connection(('127.0.0.1',{port}),timeout=2); d=s.recv(100)\n    if d: print(d.decode()); break\n  except OSError: pass\n  time.sleep(0.05)\n\
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(3); u.sendto(b'ping',('127.0.0.1',{uport}))\n\
print(u.recvfrom(100)[0].decode())\n"
    );
    let o = net
        .command(&["timeout", "15", "/usr/bin/python3", "-c", &client])
        .output()
        .unwrap();
    let (code, _, err) = j.finish();
    let _ = std::fs::remove_file(&cfgf);
    let got = String::from_utf8_lossy(&o.stdout);
    assert!(got.contains("FROM-JAIL 10.255.255.1"), "{got}\n{err}");
    assert!(got.contains("UDP-JAIL ping 10.255.255.1"), "{got}\n{err}");
    assert_eq!(code, Some(0), "{err}");
}

/// ENCAP_SOCKS5 (TCP CONNECT and UDP ASSOCIATE) and ENCAP_CONNECT: the
/// jail's flows go through a proxy on the namespace's loopback, which is
/// asked for the original destination.
#[test]
fn nstun_socks5_and_http_connect_encapsulation() {
    let Some(net) = TestNet::nstun("encap") else {
        return;
    };
    let port = free_port();
    let (s5, hc) = (
        port.wrapping_add(7).max(1024),
        port.wrapping_add(9).max(1024),
    );
    let echo = net.server(&["echo", &port.to_string()]);
    let socks = net.server(&["socks5", &s5.to_string()]);
    let conn = net.server(&["connect", &hc.to_string()]);
    let cfg = format!(
        r#"user_net {{
            rule4 {{ proto: TCP dst_ip: "198.51.100.1" action: ENCAP_SOCKS5 redirect_ip: "127.0.0.1" redirect_port: {s5} }}
            rule4 {{ proto: UDP dst_ip: "198.51.100.1" action: ENCAP_SOCKS5 redirect_ip: "127.0.0.1" redirect_port: {s5} }}
            rule6 {{ proto: TCP action: ENCAP_CONNECT redirect_ip: "127.0.0.1" redirect_port: {hc} }}
        }}"#
    );
    let t = [
        format!("tcp:198.51.100.1:{port}"),
        format!("tcp:fd00::1:{port}"),
        format!("udp:198.51.100.1:{port}"),
    ];
    let (code, out, err, _) = net.jail_client(&cfg, &[], &t);
    kill_server(echo);
    let slog = kill_server(socks);
    let clog = kill_server(conn);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(result_of(&out, &t[0]), "hello", "{err}");
    assert_eq!(result_of(&out, &t[1]), "hello", "{err}");
    assert_eq!(result_of(&out, &t[2]), "dgram", "{err}");
    assert!(
        slog.contains(&format!("SOCKS5 198.51.100.1 {port}")),
        "{slog}"
    );
    assert!(
        slog.contains(&format!("SOCKS5-UDP 198.51.100.1 {port}")),
        "{slog}"
    );
    assert!(
        clog.contains(&format!("CONNECT [fd00::1]:{port}")),
        "{clog}"
    );
}

/// A jail opening far more connections than its cap gets refusals (RST,
/// at once), the supervisor stays responsive and counts them.
#[test]
fn nstun_flow_cap_refuses_a_connection_flood() {
    let Some(net) = TestNet::nstun("cap") else {
        return;
    };
    let port = free_port();
    let hold = net.server(&["hold", &port.to_string()]);
    let flood = format!(
        "import socket\nok=ref=0\nkeep=[]\nfor i in range(2000):\n  s=socket.socket(); s.settimeout(3)\n  try:\n    s.connect(('198.51.100.1',{port})); keep.append(s); ok+=1\n  except OSError: ref+=1\nprint('OK',ok,'REFUSED',ref)\n"
    );
    let cfgf = common::temp_path("cap.cfg");
    std::fs::write(&cfgf, "user_net { nsjailrs_max_flows: 32 }\n").unwrap();
    let report = common::temp_path("cap.json");
    let (c, r) = (
        cfgf.to_string_lossy().into_owned(),
        report.to_string_lossy().into_owned(),
    );
    let start = Instant::now();
    let (code, out, err) = Jail::start(
        &net,
        &[
            "--config",
            &c,
            "-Mo",
            "--chroot",
            "/",
            "-t",
            "60",
            "--rlimit_nofile",
            "4096",
            "--run_report",
            &r,
            "--",
            "/usr/bin/python3",
            "-c",
            &flood,
        ],
    )
    .finish();
    let took = start.elapsed();
    kill_server(hold);
    let rep = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&cfgf);
    let _ = std::fs::remove_file(&report);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("OK 32 REFUSED 1968"), "{out}\n{err}");
    assert!(
        took < Duration::from_secs(30),
        "refusals must be quick: {took:?}"
    );
    let n = report_net(&rep);
    assert_eq!(n["flows_refused"].as_u64(), Some(1968), "{n}");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("refusing new ones"))
            .count(),
        1,
        "{err}"
    );
}

/// LISTEN: every connection's jail gets its own TUN and NAT, all served by
/// ONE network process of the supervisor; a jail flooding its flow cap does
/// not stop the others.
#[test]
fn nstun_one_network_process_serves_every_listen_jail() {
    let Some(net) = TestNet::nstun("listen") else {
        return;
    };
    let port = free_port();
    let lport = port.wrapping_add(3).max(1024);
    let echo = net.server(&["echo", &port.to_string()]);
    let cfgf = common::temp_path("listen.cfg");
    std::fs::write(&cfgf, "user_net { nsjailrs_max_flows: 8 }\n").unwrap();
    let c = cfgf.to_string_lossy().into_owned();
    // Each jail reads a mode line: "flood" opens 200 connections and keeps
    // them; anything else does one echo and prints it.
    let jail = format!(
        "import socket,sys,time\nm=sys.stdin.readline().strip()\nkeep=[]\nif m=='flood':\n  ok=0\n  for i in range(200):\n    s=socket.socket(); s.settimeout(2)\n    try: s.connect(('198.51.100.1',{port})); keep.append(s); ok+=1\n    except OSError: pass\n  print('FLOOD',ok,flush=True); time.sleep(3)\nelse:\n  s=socket.create_connection(('198.51.100.1',{port}),timeout=3); s.sendall(b'hi'); print('ECHO',s.recv(10).decode(),flush=True)\n"
    );
    let lp = lport.to_string();
    let mut srv = Jail::start(
        &net,
        &[
            "--config",
            &c,
            "-v",
            "-Ml",
            "--port",
            &lp,
            "--bindhost",
            "127.0.0.1",
            "--chroot",
            "/",
            "--rlimit_nofile",
            "1024",
            "-t",
            "20",
            "--",
            "/usr/bin/python3",
            "-c",
            &jail,
        ],
    );
    assert!(srv.wait_for("Listening on").is_some(), "{:?}", srv.seen);
    let client = format!(
        "import socket,threading,time\nout={{}}\ndef go(name,mode):\n  s=socket.create_connection(('127.0.0.1',{lport}),timeout=15); s.sendall((mode+'\\n').encode())\n  d=b''\n  while True:\n    x=s.recv(100)\n    if not x: break\n    d+=x\n  out[name]=d.decode().strip()\nts=[threading.Thread(target=go,args=('flood','flood'))]\nts[0].start(); time.sleep(1.5)\nts+= [threading.Thread(target=go,args=(f'e{{i}}','echo')) for i in range(3)]\n[t.start() for t in ts[1:]]\n[t.join() for t in ts]\nfor k in sorted(out): print(k, out[k])\n"
    );
    let o = net
        .command(&["timeout", "25", "/usr/bin/python3", "-c", &client])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&o.stdout).into_owned();
    // SAFETY: kill(2) on the nsjail this test started (SIGTERM: clean stop).
    unsafe { libc::kill(srv.child.id() as i32, libc::SIGTERM) };
    let (_, _, err) = srv.finish();
    kill_server(echo);
    net.assert_empty();
    let _ = std::fs::remove_file(&cfgf);
    assert!(got.contains("flood FLOOD 8"), "{got}\n{err}");
    for i in 0..3 {
        assert!(got.contains(&format!("e{i} ECHO hi")), "{got}\n{err}");
    }
    let helpers: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("NSTUN network process started"))
        .collect();
    // One network process for the 4 jails (-v logs its start).
    assert_eq!(helpers.len(), 1, "{err}");
}
