//! Networking: MACVLAN `vs`, `iface_own`, traffic rules, core scheduling,
//! the time namespace (user_net: tests/usernet.rs).
//!
//! Every test that touches interfaces first makes its own network
//! namespace (`ip netns add`) holding a veth pair `ha` (198.51.100.1/24,
//! TEST-NET-2) / `hb`, runs nsjail inside it (`ip netns exec`), and removes
//! it in `Drop`, checking it is gone. Host interfaces are never touched and
//! traffic never leaves the namespaces made here.
//!
//! Kernel fact checked by `iface_own_moves_a_veth_end_into_the_jail`: when
//! the jail's network namespace dies, a *virtual* interface moved into it is
//! destroyed (a veth takes its peer along), it does not come back to the
//! namespace it came from; a physical one would go to the initial network
//! namespace.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{root_or_skip, run, skip, test_name, wait_out, Out, NSJAIL};

/// A throwaway network namespace with the veth pair `ha` (198.51.100.1/24,
/// up) and `hb` (up, no address).
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
    /// None (with the reason printed) when the host cannot provide it.
    /// `test` tags the namespace name; SKIP lines name the running test.
    fn new(test: &str) -> Option<TestNet> {
        if !root_or_skip(&test_name()) {
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            skip("iproute2's 'ip' is not installed (apt-get install iproute2)");
            return None;
        }
        let name = format!("nsjt-{}-{test}", std::process::id());
        let o = ip(&["netns", "add", &name]);
        if !o.status.success() {
            skip(format!(
                "'ip netns add' failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return None;
        }
        let net = TestNet { name };
        let o = net.ip(&["link", "add", "ha", "type", "veth", "peer", "name", "hb"]);
        if !o.status.success() {
            skip(format!(
                "no veth in this kernel: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
            return None;
        }
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "198.51.100.1/24", "dev", "ha"],
            &["link", "set", "ha", "up"],
            &["link", "set", "hb", "up"],
        ] {
            let o = net.ip(args);
            assert!(o.status.success(), "ip {args:?}: {o:?}");
        }
        Some(net)
    }

    /// [`TestNet::new`] for tests whose peer or jail side uses busybox's
    /// `nc`/`ping`/`netstat`.
    fn with_busybox(test: &str) -> Option<TestNet> {
        if Command::new("busybox").arg("true").output().is_err() {
            if root_or_skip(&test_name()) {
                skip("busybox is not installed (apt-get install busybox-static)");
            }
            return None;
        }
        TestNet::new(test)
    }

    /// `ip -n NAME args`.
    fn ip(&self, args: &[&str]) -> Output {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    fn ip_text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ip(args).stdout).into_owned()
    }

    /// A command started inside the namespace.
    fn spawn(&self, cmd: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in the test netns")
    }

    /// nsjail run inside the namespace (30 s watchdog).
    fn nsjail(&self, args: &[&str]) -> Out {
        let start = Instant::now();
        let mut cmd = vec![NSJAIL];
        cmd.extend_from_slice(args);
        wait_out(self.spawn(&cmd), start, Duration::from_secs(30))
    }

    /// A one-shot TCP listener (busybox nc) on `port` of the namespace; its
    /// output is what a client sent. Bounded by `timeout 10`.
    fn listen(&self, port: &str) -> Listener {
        // stdin stays open (a pipe we hold): busybox nc ends its session at
        // stdin EOF, which could come before the client's data.
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(["timeout", "10", "busybox", "nc", "-l", "-p", port])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the listener");
        let stdin = child.stdin.take();
        // Wait (bounded) until the socket listens.
        for _ in 0..100 {
            let ss = Command::new("ip")
                .args(["netns", "exec", &self.name, "busybox", "netstat", "-ltn"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if ss.contains(&format!(":{port} ")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Listener {
            child: Some(child),
            stdin,
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let o = ip(&["netns", "del", &self.name]);
        let list = String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).into_owned();
        let gone = o.status.success()
            && !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(self.name.as_str()));
        let host = String::from_utf8_lossy(&ip(&["-br", "link"]).stdout).into_owned();
        let leaked = host
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|n| n == "vs" || n.starts_with("ha@") || n.starts_with("hb@"));
        if std::thread::panicking() {
            if !gone || leaked {
                eprintln!("cleanup of netns {} incomplete: {list} / {host}", self.name);
            }
        } else {
            assert!(gone, "netns {} still listed: {list}", self.name);
            assert!(!leaked, "test interfaces left on the host: {host}");
        }
    }
}

/// The listener; killed (if still running) and reaped on drop.
struct Listener {
    child: Option<Child>,
    stdin: Option<std::process::ChildStdin>,
}

impl Listener {
    /// What the client sent (waits for the listener to end, ≤ 10 s).
    fn received(mut self) -> String {
        let child = self.child.take().expect("listener");
        let out = wait_out(child, Instant::now(), Duration::from_secs(15)).stdout;
        self.stdin.take();
        out
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const VS_ARGS: [&str; 6] = [
    "-I",
    "hb",
    "--macvlan_vs_ip",
    "198.51.100.2",
    "--macvlan_vs_gw",
    "198.51.100.1",
];

fn jail_sh<'a>(extra: &[&'a str], script: &'a str) -> Vec<&'a str> {
    let mut a = vec!["-Mo", "--chroot", "/", "-q"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    a
}

#[test]
fn macvlan_vs_is_configured_and_reaches_the_peer() {
    let Some(net) = TestNet::with_busybox("mvbridge") else {
        return;
    };
    let listener = net.listen("7101");
    let mut extra = VS_ARGS.to_vec();
    extra.extend_from_slice(&[
        "--macvlan_vs_nm",
        "255.255.255.128",
        "--macvlan_vs_ma",
        "02:00:00:aa:bb:cc",
        "--macvlan_vs_mo",
        "bridge",
        "--cap",
        "CAP_NET_RAW",
    ]);
    let o = net.nsjail(&jail_sh(
        &extra,
        "ip -d addr show vs; echo ROUTES; ip route; echo PING; busybox ping -c1 -W3 198.51.100.1; \
         (echo hello-from-vs; sleep 0.5) | busybox nc -w3 198.51.100.1 7101; echo nc=$?",
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    let s = &o.stdout;
    assert!(s.contains("link/ether 02:00:00:aa:bb:cc"), "{s}");
    assert!(s.contains("macvlan mode bridge"), "{s}");
    assert!(s.contains("inet 198.51.100.2/25 brd 198.51.100.127"), "{s}");
    assert!(s.contains("state UP"), "{s}");
    let routes = s.split("ROUTES").nth(1).unwrap_or_default();
    assert!(routes.contains("default via 198.51.100.1 dev vs"), "{s}");
    assert!(s.contains("1 packets received"), "{s}");
    assert!(s.contains("nc=0"), "{s}");
    assert_eq!(listener.received().trim(), "hello-from-vs");
    // The peer learnt the jail's address at the configured MAC.
    let neigh = net.ip_text(&["neigh", "show", "dev", "ha"]);
    assert!(
        neigh.contains("198.51.100.2 lladdr 02:00:00:aa:bb:cc"),
        "{neigh}"
    );
    // vs lived in the jail's namespace only.
    assert!(!net.ip_text(&["-br", "link"]).contains("vs@"));
}

#[test]
fn macvlan_with_ip_zero_is_left_unconfigured() {
    let Some(net) = TestNet::new("mvzero") else {
        return;
    };
    let o = net.nsjail(&jail_sh(
        &["-I", "hb", "--macvlan_vs_ip", "0.0.0.0"],
        "ip -d addr show vs; echo ROUTES; ip route",
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    let s = &o.stdout;
    assert!(s.contains("macvlan mode private"), "default mode: {s}");
    assert!(s.contains("state DOWN"), "{s}");
    assert!(!s.contains("inet "), "{s}");
    assert_eq!(s.split("ROUTES").nth(1).map(str::trim), Some(""), "{s}");
}

#[test]
fn macvlan_and_iface_errors_fail_the_jail_clearly() {
    let Some(net) = TestNet::new("mverr") else {
        return;
    };
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["-I", "nope0"],
            &["macvlan_iface", "'nope0'", "No such device"],
        ),
        (
            &["-I", "hb", "--macvlan_vs_nm", "255.0.255.0"],
            &["macvlan_vs_nm", "contiguous"],
        ),
        (
            &["-I", "hb", "--macvlan_vs_gw", "10.9.9.9"],
            &["default route via 10.9.9.9", "macvlan_vs_gw"],
        ),
        (
            &["--iface_own", "nope0"],
            &["iface_own", "'nope0'", "No such device"],
        ),
    ];
    for (extra, needles) in cases {
        let o = net.nsjail(&jail_sh(extra, "echo RAN"));
        assert_eq!(o.code, Some(255), "{extra:?}: {o:?}");
        assert!(!o.stdout.contains("RAN"), "{extra:?}: {o:?}");
        for n in needles {
            assert!(o.stderr.contains(n), "{extra:?}: missing {n}: {}", o.stderr);
        }
    }
    // Both veth ends are untouched.
    let links = net.ip_text(&["-br", "link"]);
    assert!(links.contains("ha@") && links.contains("hb@"), "{links}");
}

#[test]
fn iface_own_moves_a_veth_end_into_the_jail() {
    let Some(net) = TestNet::with_busybox("ifown") else {
        return;
    };
    let o = net.nsjail(&jail_sh(
        &["--iface_own", "hb", "--keep_caps"],
        "ip -br link; ip addr add 198.51.100.3/24 dev hb && ip link set hb up && \
         busybox ping -c1 -W3 198.51.100.1",
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        o.stdout.lines().any(|l| l.starts_with("hb@")),
        "hb inside the jail: {}",
        o.stdout
    );
    assert!(o.stdout.contains("1 packets received"), "{}", o.stdout);
    // The jail's namespace is gone: the kernel destroyed the veth (both ends).
    let mut links = String::new();
    for _ in 0..100 {
        links = net.ip_text(&["-br", "link"]);
        if !links.contains("ha@") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!links.contains("hb@") && !links.contains("ha@"), "{links}");
    // A second jail cannot have it any more.
    let o = net.nsjail(&jail_sh(&["--iface_own", "hb"], "echo RAN"));
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.contains("moving interface 'hb'"), "{}", o.stderr);
}

#[test]
fn traffic_rules_are_installed_and_enforced() {
    let Some(net) = TestNet::with_busybox("rules") else {
        return;
    };
    let cfg = std::env::temp_dir().join(format!("nsjt-rules-{}.cfg", std::process::id()));
    std::fs::write(
        &cfg,
        r#"
traffic_rule { dst_ip: "198.51.100.1/32" proto: TCP dport: 7102 action: DROP }
traffic_rule { dst_ip: "198.51.100.9" action: REJECT }
traffic_rule { oif: "vs" action: ALLOW }
traffic_rule { dst_ip: "2001:db8::/32" ip_family: IPV6 }
"#,
    )
    .unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let listener = net.listen("7103");
    let mut extra = vec!["--config", cfg_s.as_str(), "--cap", "CAP_NET_RAW"];
    extra.extend_from_slice(&VS_ARGS);
    let o = net.nsjail(&jail_sh(
        &extra,
        "ip rule; ip -6 rule; echo PING; busybox ping -c1 -W3 198.51.100.1; \
         echo x | busybox nc -w3 198.51.100.1 7102; echo dropped=$?; \
         (echo through; sleep 0.5) | busybox nc -w3 198.51.100.1 7103; echo other_port=$?; \
         busybox ping -c1 -W1 198.51.100.9; echo rejected=$?",
    ));
    let _ = std::fs::remove_file(&cfg);
    assert_eq!(o.code, Some(0), "{o:?}");
    let s = &o.stdout;
    for want in [
        "to 198.51.100.1 ipproto tcp dport 7102 blackhole",
        "to 198.51.100.9 unreachable",
        "oif vs lookup main",
        "to 2001:db8::/32 blackhole",
    ] {
        assert!(s.contains(want), "missing rule '{want}': {s}");
    }
    assert!(s.contains("1 packets received"), "ICMP is not matched: {s}");
    assert!(s.contains("dropped=1"), "{s}");
    assert!(
        o.stderr.contains("Invalid argument"),
        "blackhole: {}",
        o.stderr
    );
    assert!(s.contains("other_port=0"), "{s}");
    assert_eq!(listener.received().trim(), "through");
    assert!(s.contains("rejected=1"), "{s}");
    assert!(
        o.stderr.contains("Network is unreachable"),
        "unreachable: {}",
        o.stderr
    );
}

#[test]
fn bad_traffic_rule_fails_before_launch() {
    if !root_or_skip("bad_traffic_rule_fails_before_launch") {
        return;
    }
    let cfg = std::env::temp_dir().join(format!("nsjt-badrule-{}.cfg", std::process::id()));
    std::fs::write(&cfg, "traffic_rule { dst_ip: \"2001:db8::1\" dport: 80 }\n").unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let o = run(&jail_sh(&["--config", &cfg_s], "echo RAN"));
    let _ = std::fs::remove_file(&cfg);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("RAN"));
    assert!(
        o.stderr.contains("traffic_rule #1: dst_ip") && o.stderr.contains("ip_family"),
        "{}",
        o.stderr
    );
}

#[test]
fn network_features_need_a_network_namespace() {
    let o = run(&jail_sh(&["-N", "--iface_own", "eth0"], "echo RAN"));
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("RAN"));
    assert!(
        o.stderr.contains("iface_own") && o.stderr.contains("clone_newnet"),
        "{}",
        o.stderr
    );
}

/// PR_SCHED_CORE_GET on ourselves: EINVAL when the kernel has no core
/// scheduling.
fn core_scheduling_supported() -> bool {
    let mut cookie: u64 = 0;
    // SAFETY: prctl(PR_SCHED_CORE=62, PR_SCHED_CORE_GET=0, pid 0 = self,
    // PIDTYPE_PID=0, &cookie) writes at most one u64 to `cookie`.
    let rc = unsafe {
        libc::prctl(
            62,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            &mut cookie as *mut u64 as libc::c_ulong,
        )
    };
    rc == 0
}

#[test]
fn use_core_scheduling_creates_a_cookie_or_fails_clearly() {
    if !root_or_skip("use_core_scheduling_creates_a_cookie_or_fails_clearly") {
        return;
    }
    let o = run(&jail_sh(&["--use_core_scheduling"], "echo RAN"));
    if core_scheduling_supported() {
        assert_eq!(o.code, Some(0), "{o:?}");
        assert!(o.stdout.contains("RAN"));
    } else {
        skip("success part: this kernel has no core scheduling (CONFIG_SCHED_CORE); only the failure path is checked");
        assert_eq!(o.code, Some(255), "{o:?}");
        assert!(!o.stdout.contains("RAN"));
        assert!(
            o.stderr.contains("use_core_scheduling") && o.stderr.contains("PR_SCHED_CORE"),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn clone_newtime_gives_the_jail_its_own_time_namespace() {
    if !root_or_skip("clone_newtime_gives_the_jail_its_own_time_namespace") {
        return;
    }
    let host = std::fs::read_link("/proc/self/ns/time")
        .expect("time namespaces")
        .to_string_lossy()
        .into_owned();
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "--enable_clone_newtime",
        "--",
        "/bin/sh",
        "-c",
        "readlink /proc/self/ns/time /proc/self/ns/time_for_children",
    ]);
    assert_eq!(o.code, Some(0), "{o:?}");
    let ns: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(ns.len(), 2, "{}", o.stdout);
    assert!(ns[0].starts_with("time:["), "{}", o.stdout);
    assert_ne!(ns[0], host, "the jail itself is in a new time namespace");
    assert_eq!(ns[0], ns[1], "and its children too");
    assert!(
        o.stderr.contains("CLONE_NEWTIME requested"),
        "nsjail's warning: {}",
        o.stderr
    );
    // Without the flag: the host's.
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--",
        "/bin/readlink",
        "/proc/self/ns/time",
    ]);
    assert_eq!(o.stdout.trim(), host, "{o:?}");
}

#[test]
fn rerun_gives_each_jail_a_fresh_vs_with_the_same_mac() {
    let Some(net) = TestNet::new("rerun") else {
        return;
    };
    let mut args = vec![NSJAIL, "-Mr", "--chroot", "/"];
    args.extend_from_slice(&VS_ARGS);
    args.extend_from_slice(&[
        "--macvlan_vs_ma",
        "02:00:00:aa:bb:dd",
        "--macvlan_vs_mo",
        "bridge",
        "--",
        "/bin/sh",
        "-c",
        "ip -br addr show vs",
    ]);
    let mut child = net.spawn(&args);
    let stderr = child.stderr.take().expect("stderr");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let (mut ok_runs, mut seen) = (0, Vec::new());
    while ok_runs < 3 && start.elapsed() < Duration::from_secs(20) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                if l.contains("exited with status: 0") {
                    ok_runs += 1;
                }
                let failed = l.contains("Couldn't launch");
                seen.push(l);
                if failed {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    // SAFETY: kill(2) on the pid of our own child (ip netns exec execs nsjail).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stop = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if stop.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nsjail -Mr did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stdout = reader.join().expect("stdout reader");
    assert!(ok_runs >= 3, "runs: {ok_runs}\n{}", seen.join("\n"));
    let vs_lines: Vec<&str> = stdout.lines().collect();
    assert!(vs_lines.len() >= 3, "{stdout}");
    for l in &vs_lines[..3] {
        assert!(
            l.starts_with("vs@") && l.contains(" UP ") && l.contains("198.51.100.2/24"),
            "{l}"
        );
    }
}
