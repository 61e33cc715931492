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
