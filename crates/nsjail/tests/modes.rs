//! LISTEN, RERUN, EXECVE and daemon mode, end to end. Network: 127.0.0.1
//! and ::1 only; servers listen on port 0 (a fresh port chosen by the
//! kernel, read back from the "Listening on" line), so runs never collide.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// The port from "Listening on [..]:PORT".
fn listen_port(r: &mut Running) -> u16 {
    assert!(r.wait_for("Listening on "), "server up: {:?}", r.seen);
    let line = r.seen.iter().find(|l| l.contains("Listening on ")).unwrap();
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

/// A LISTEN server on 127.0.0.1 (ephemeral port) over `--chroot /` with
/// `extra` flags running `cmd`; returns it with the port it listens on.
fn serve_v4(extra: &[&str], cmd: &[&str]) -> (Running, u16) {
    let mut args = LISTEN_V4.to_vec();
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let mut r = Running::start(&args);
    let port = listen_port(&mut r);
    (r, port)
}

fn connect(host: &str, port: u16) -> TcpStream {
    let s = TcpStream::connect((host, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Read until EOF (bounded by the read timeout).
fn read_all(s: &mut TcpStream) -> String {
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

/// True when the server closed the connection without sending anything
/// (within `wait`).
fn closed_at_once(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

fn stop(r: Running, sig: i32) -> (Option<i32>, String) {
    r.signal(sig);
    let (code, stderr, _) = r.finish(Duration::from_secs(15));
    (code, stderr)
}

const ECHO: &str = "read l; echo \"echo:$l pid:$$\"";

#[test]
fn listen_jail_answers_over_the_socket() {
    if !root_or_skip("listen_jail_answers_over_the_socket") {
        return;
    }
    let report = temp_path("listen.jsonl");
    let mut r = Running::start(&[
        "-Ml",
        "--port",
        "0",
        "--chroot",
        "/",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        ECHO,
    ]);
    let port = listen_port(&mut r);
    assert!(
        r.seen.iter().any(|l| l.contains("Listening on [::]:")),
        "default bindhost is :: {:?}",
        r.seen
    );
    // Dual-stack: IPv4 and IPv6 clients on the same listener.
    let mut s = connect("127.0.0.1", port);
    s.write_all(b"hello\n").unwrap();
    let got = read_all(&mut s);
    assert_eq!(
        got, "echo:hello pid:1\n",
        "the jail (PID 1 of its namespace) answered; connection closed when it exited"
    );
    let v6 = TcpStream::connect(("::1", port));
    let mut v6_ok = false;
    match v6 {
        Ok(mut s6) => {
            s6.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s6.write_all(b"six\n").unwrap();
            assert_eq!(read_all(&mut s6), "echo:six pid:1\n");
            v6_ok = true;
        }
        Err(e) => skip(format!("IPv6 client part: ::1 not reachable here ({e})")),
    }
    // Every jail has ended (and written its report line) before the stop.
    for _ in 0..1 + v6_ok as usize {
        assert!(r.wait_for("exited with status: 0"), "{:?}", r.seen);
    }
    let (code, stderr) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("New connection from: [::ffff:127.0.0.1]:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Executing '/bin/sh' for '[::ffff:127.0.0.1]:"),
        "{stderr}"
    );
    if v6_ok {
        assert!(stderr.contains("New connection from: [::1]:"), "{stderr}");
    }
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1 + v6_ok as usize, "{text}");
    assert!(lines[0]["remote"]
        .as_str()
        .unwrap()
        .starts_with("[::ffff:127.0.0.1]:"));
    assert_eq!(lines[0]["exit_code"], 0);
}

#[test]
fn listen_ipv4_bindhost_and_explicit_port() {
    if !root_or_skip("listen_ipv4_bindhost_and_explicit_port") {
        return;
    }
    // A free port, picked by binding one and releasing it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = port.to_string();
    let mut r = Running::start(&[
        "--port",
        &p,
        "--bindhost",
        "127.0.0.1",
        "--chroot",
        "/",
        "--",
        "/bin/sh",
        "-c",
        ECHO,
    ]);
    assert!(
        r.wait_for(&format!("Listening on [::ffff:127.0.0.1]:{port}")),
        "--port alone selects LISTEN; IPv4 text becomes ::ffff: {:?}",
        r.seen
    );
    let mut s = connect("127.0.0.1", port);
    s.write_all(b"v4\n").unwrap();
    assert_eq!(read_all(&mut s), "echo:v4 pid:1\n");
    let (code, stderr) = stop(r, libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn listen_limits_per_ip_and_total() {
    if !root_or_skip("listen_limits_per_ip_and_total") {
        return;
    }
    for (flag, n, msg) in [
        ("--max_conns_per_ip", 2, "max_conns_per_ip limit reached: 2"),
        ("--max_conns", 3, "max_conns limit reached: 3"),
    ] {
        let ns = n.to_string();
        let mut r = Running::start(&[
            "-Ml",
            "--port",
            "0",
            "--bindhost",
            "::1",
            flag,
            &ns,
            "--chroot",
            "/",
            "-N",
            "--",
            "/bin/sh",
            "-c",
            "echo up; exec /bin/cat",
        ]);
        if !r.wait_for("Listening on ") {
            let (_, e) = stop(r, libc::SIGTERM);
            eprintln!("SKIP listen_limits ({flag}): no ::1 here? {e}");
            return;
        }
        let port: u16 = r
            .seen
            .iter()
            .find(|l| l.contains("Listening on "))
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut live = Vec::new();
        for _ in 0..n {
            let mut s = connect("::1", port);
            let mut b = [0u8; 3];
            s.read_exact(&mut b).expect("jail up");
            assert_eq!(&b, b"up\n");
            live.push(s);
        }
        // The N+1-th is refused while N are live.
        let mut extra = connect("::1", port);
        assert!(
            closed_at_once(&mut extra, Duration::from_secs(5)),
            "{flag}: N+1-th refused"
        );
        assert!(r.wait_for(msg), "{flag}: {:?}", r.seen);
        // The live ones still work.
        live[0].write_all(b"ping\n").unwrap();
        let mut b = [0u8; 5];
        live[0].read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping\n");
        // Once one ends, a new one is accepted.
        drop(live.remove(0));
        assert!(
            r.wait_for(&format!("(PIDs left: {})", n - 1)),
            "{:?}",
            r.seen
        );
        let mut again = connect("::1", port);
        let mut b = [0u8; 3];
        again.read_exact(&mut b).expect("accepted after one closed");
        drop(again);
        drop(live);
        let (code, stderr) = stop(r, libc::SIGTERM);
        assert_eq!(code, Some(0), "{stderr}");
    }
}

#[test]
fn listen_disconnect_kills_the_jail() {
    if !root_or_skip("listen_disconnect_kills_the_jail") {
        return;
    }
    let (mut r, port) = serve_v4(&[], &["/bin/sleep", "31.201"]);
    let s = connect("127.0.0.1", port);
    assert!(r.wait_for("Executing '/bin/sleep'"), "{:?}", r.seen);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!procs_with("31.201").is_empty(), "jail running");
    drop(s);
    assert!(
        r.wait_for("terminated with signal: SIGKILL (9), (PIDs left: 0)"),
        "{:?}",
        r.seen
    );
    assert!(gone("31.201"), "jail killed after the client left");
    let (code, stderr) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn listen_signals_list_and_stop() {
    if !root_or_skip("listen_signals_list_and_stop") {
        return;
    }
    for (stop_sig, list_sig) in [
        (libc::SIGTERM, libc::SIGUSR1),
        (libc::SIGINT, libc::SIGQUIT),
    ] {
        let (mut r, port) = serve_v4(&["-t", "30"], &["/bin/sleep", "31.202"]);
        let a = connect("127.0.0.1", port);
        let b = connect("127.0.0.1", port);
        let local = a.local_addr().unwrap().port();
        for _ in 0..2 {
            assert!(r.wait_for("Executing '/bin/sleep'"), "{:?}", r.seen);
        }
        r.signal(list_sig);
        assert!(
            r.wait_for("Total number of spawned namespaces: 2"),
            "{:?}",
            r.seen
        );
        assert!(
            r.wait_for(&format!(
                "Remote host: [::ffff:127.0.0.1]:{local}, Run time: "
            )),
            "{:?}",
            r.seen
        );
        assert!(r.wait_for("(time left: "), "{:?}", r.seen);
        let (code, stderr) = stop(r, stop_sig);
        assert_eq!(
            code,
            Some(0),
            "LISTEN returns 0 on a fatal signal: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "Server stops due to fatal signal ({stop_sig}) caught"
            )),
            "{stderr}"
        );
        assert_eq!(
            stderr.matches("terminated with signal: SIGKILL").count(),
            2,
            "{stderr}"
        );
        assert!(gone("31.202"));
        drop((a, b));
    }
}

/// A jail whose cgroup cannot be set up (the kernel refuses a memsw limit
/// below the memory limit) fails alone: its connection is closed, the
/// server keeps serving, and no cgroup directory is left.
#[test]
fn listen_cgroup_failure_drops_only_that_connection() {
    if !root_or_skip("listen_cgroup_failure_drops_only_that_connection") {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        eprintln!("SKIP listen_cgroup_failure_drops_only_that_connection: no cgroup v1 memsw accounting here");
        return;
    }
    let (mut r, port) = serve_v4(
        &[
            "--cgroup_mem_max",
            "67108864",
            "--cgroup_mem_memsw_max",
            "33554432",
        ],
        &["/bin/echo", "31.206"],
    );
    for _ in 0..2 {
        let mut s = connect("127.0.0.1", port);
        assert!(closed_at_once(&mut s, Duration::from_secs(5)));
    }
    assert!(r.wait_for("memory.memsw.limit_in_bytes"), "{:?}", r.seen);
    std::thread::sleep(Duration::from_millis(100));
    assert!(r.child.try_wait().unwrap().is_none(), "server still up");
    let (code, stderr) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/memory")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("NSJAIL"))
        .collect();
    assert!(left.is_empty(), "cgroup dirs left: {left:?}");
}

#[test]
fn listen_setup_failure_drops_only_that_connection() {
    if !root_or_skip("listen_setup_failure_drops_only_that_connection") {
        return;
    }
    let (mut r, port) = serve_v4(&[], &["/nonexistent/31.203"]);
    for _ in 0..3 {
        let mut s = connect("127.0.0.1", port);
        assert!(closed_at_once(&mut s, Duration::from_secs(5)));
    }
    assert!(
        r.wait_for("Couldn't launch the child process for [::ffff:127.0.0.1]:"),
        "{:?}",
        r.seen
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(r.child.try_wait().unwrap().is_none(), "server still up");
    let (code, stderr) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr
            .matches("execve('/nonexistent/31.203') failed")
            .count(),
        3,
        "{stderr}"
    );
}

#[test]
fn listen_time_limit_closes_the_connection() {
    if !root_or_skip("listen_time_limit_closes_the_connection") {
        return;
    }
    let (mut r, port) = serve_v4(
        &["-t", "1"],
        &["/bin/sh", "-c", "echo start; exec /bin/sleep 31.204"],
    );
    let t = Instant::now();
    let mut s = connect("127.0.0.1", port);
    assert_eq!(read_all(&mut s), "start\n");
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(900) && el < Duration::from_secs(3),
        "{el:?}"
    );
    assert!(
        r.wait_for("run time >= time limit (1 >= 1) ([::ffff:127.0.0.1]:"),
        "{:?}",
        r.seen
    );
    assert!(gone("31.204"));
    let (code, _) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0));
}

#[test]
fn listen_large_transfer_both_ways() {
    if !root_or_skip("listen_large_transfer_both_ways") {
        return;
    }
    // 4 MiB through the jail's `cat`: exercises full pipes and a full socket.
    let (r, port) = serve_v4(&["-N"], &["/bin/cat"]);
    let s = connect("127.0.0.1", port);
    let mut w = s.try_clone().unwrap();
    let data: Vec<u8> = (0..4 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let expect = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
    });
    let mut got = vec![0u8; expect.len()];
    let mut rd = s;
    rd.read_exact(&mut got).expect("all data echoed");
    writer.join().unwrap();
    assert!(got == expect, "data intact");
    drop(rd);
    let (code, _) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0));
}

#[test]
fn rerun_runs_again_in_fresh_pid_namespaces() {
    if !root_or_skip("rerun_runs_again_in_fresh_pid_namespaces") {
        return;
    }
    let report = temp_path("rerun.jsonl");
    let start = Instant::now();
    let mut child = std::process::Command::new(NSJAIL)
        .args([
            "-Mr",
            "--chroot",
            "/",
            "-q",
            "--run_report",
            report.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            // A leftover from an earlier run would show up in /proc.
            "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo \"run $$ $n\"; /bin/sleep 31.205 &",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < 20 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(143));
    assert!(lines.len() >= 20, "ran repeatedly: {lines:?}");
    for l in &lines {
        // PID 1 and only itself in /proc: a new, empty PID namespace each time.
        assert_eq!(l, "run 1 1", "{lines:?}");
    }
    assert!(gone("31.205"));
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let runs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["run"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(runs.len() >= 20, "{text}");
    assert!(
        runs.windows(2).all(|w| w[1] == w[0] + 1),
        "one line per run: {runs:?}"
    );
}

#[test]
fn rerun_stops_with_255_when_the_jail_cannot_start() {
    if !root_or_skip("rerun_stops_with_255_when_the_jail_cannot_start") {
        return;
    }
    let o = run(&["-Mr", "--chroot", "/", "--", "/nonexistent/31.206"]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(
        o.stderr.contains("Couldn't launch the child process"),
        "{}",
        o.stderr
    );
}

fn execve(extra: &[&str], script: &str) -> (Option<i32>, String, String, u32) {
    let mut a = vec!["-Me", "--chroot", "/", "-q"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    let start = Instant::now();
    let child = std::process::Command::new(NSJAIL)
        .args(&a)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = wait_out(child, start, Duration::from_secs(20));
    (o.code, o.stdout, o.stderr, pid)
}

#[test]
fn execve_with_and_without_user_namespace() {
    if !root_or_skip("execve_with_and_without_user_namespace") {
        return;
    }
    for extra in [&[][..], &["--disable_clone_newuser"][..]] {
        let (code, out, err, pid) = execve(extra, "echo $$; cat /proc/1/comm; exit 5");
        assert_eq!(
            code,
            Some(5),
            "{extra:?}: exit code of the program itself: {err}"
        );
        let mut l = out.lines();
        assert_eq!(
            l.next(),
            Some(pid.to_string().as_str()),
            "{extra:?}: exec'd in place (same pid, host PID namespace): {out} {err}"
        );
        assert_eq!(
            l.next(),
            Some("ns-init"),
            "{extra:?}: PID 1 of the new namespace; /proc is its: {out}"
        );
        let (code, _, err, _) = execve(extra, "exit 0");
        assert_eq!(code, Some(0), "{err}");
    }
    // Inside a user namespace we are root; without one, the host's root.
    let (_, out, _, _) = execve(&[], "cat /proc/self/uid_map; cat /proc/self/setgroups");
    assert!(
        out.split_whitespace()
            .collect::<Vec<_>>()
            .starts_with(&["0", "0", "1"]),
        "{out}"
    );
    assert!(out.contains("deny"), "{out}");
}

#[test]
fn execve_init_reaps_orphans() {
    if !root_or_skip("execve_init_reaps_orphans") {
        return;
    }
    // An orphan (the inner shell's background child) is reparented to the
    // namespace's init, which must reap it: no zombie stays behind.
    let (code, out, err, _) = execve(
        &[],
        "/bin/sh -c '/bin/true & exit 0'; /bin/sleep 0.3; \
         z=0; for s in /proc/[0-9]*/stat; do read -r a b c rest < $s; [ \"$c\" = Z ] && z=$((z+1)); done; echo zombies=$z",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "zombies=0", "{err}");
}

#[test]
fn execve_signal_death_and_time_limit_not_armed() {
    if !root_or_skip("execve_signal_death_and_time_limit_not_armed") {
        return;
    }
    // Not PID 1 (the program keeps its host pid): a self-signal kills it.
    let (code, _, _, _) = execve(&[], "kill -TERM $$; sleep 1");
    assert_eq!(code, None, "killed by SIGTERM");
    // No supervisor: -t is not enforced (as nsjail).
    let t = Instant::now();
    let (code, _, _, _) = execve(&["-t", "1"], "/bin/sleep 1.5; exit 3");
    assert_eq!(code, Some(3));
    assert!(t.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn daemon_detaches_and_logs_to_its_file() {
    if !root_or_skip("daemon_detaches_and_logs_to_its_file") {
        return;
    }
    let log = temp_path("daemon.log");
    let l = log.to_str().unwrap().to_string();
    let o = run(&[
        "-d",
        "-Ml",
        "--port",
        "0",
        "--bindhost",
        "127.0.0.1",
        "-l",
        &l,
        "--chroot",
        "/",
        "--",
        "/bin/sh",
        "-c",
        ECHO,
    ]);
    assert_eq!(o.code, Some(0), "the launcher returns at once: {o:?}");
    assert_eq!(o.stderr, "", "logs go to the file");
    // Find the daemon (its command line names our unique log file).
    let find = || -> Option<i32> {
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let pid: i32 = e.file_name().to_str()?.parse().ok().unwrap_or(0);
            if pid == 0 {
                continue;
            }
            let c = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&c).contains(&l) {
                return Some(pid);
            }
        }
        None
    };
    let until = Instant::now() + Duration::from_secs(10);
    let mut port = None;
    while Instant::now() < until && port.is_none() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        port = text
            .lines()
            .find(|l| l.contains("Listening on "))
            .and_then(|l| l.rsplit(':').next()?.trim().parse::<u16>().ok());
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = find().expect("daemon running");
    let port = port.expect("daemon logged its port");
    let mut s = connect("127.0.0.1", port);
    s.write_all(b"d\n").unwrap();
    let got = read_all(&mut s);
    // SAFETY: kill on the daemon we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(10);
    while find().is_some() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(find().is_none(), "daemon stopped on SIGTERM");
    assert_eq!(got, "echo:d pid:1\n");
    assert!(
        text.contains("Server stops due to fatal signal (15)"),
        "{text}"
    );
    let _ = s.shutdown(Shutdown::Both);
}

/// Without a PID namespace a run can signal every process of its uid; the
/// next runs must not exist yet (cloned ahead, as the pipelined RERUN does
/// with PID namespaces), or one hostile run ends the whole RERUN loop.
#[test]
fn rerun_without_pid_namespace_cannot_kill_the_next_runs() {
    if !root_or_skip("rerun_without_pid_namespace_cannot_kill_the_next_runs") {
        return;
    }
    let start = Instant::now();
    let mut child = std::process::Command::new(NSJAIL)
        .args([
            "-Mr",
            "--chroot",
            "/",
            "-q",
            "--disable_clone_newpid",
            "--disable_proc",
            // a uid of its own: kill(-1) reaches only this test's jails
            "-u",
            "61234:61234",
            "-g",
            "61234:61234",
            "--",
            "/bin/sh",
            "-c",
            "echo run; kill -9 -1; exit 0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while lines.len() < 5 && start.elapsed() < Duration::from_secs(10) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => lines.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{lines:?} {stderr}");
    assert!(lines.len() >= 5, "ran repeatedly: {lines:?} {stderr}");
}

/// Issue 14 item 7: LISTEN numbers its report lines 1, 2, 3, ... (once per
/// run, not at start and at reap); a jail still running when nsjail gets
/// SIGTERM is reported `stopped` with the next number (item 3).
#[test]
fn listen_numbers_each_run_once() {
    if !root_or_skip("listen_numbers_each_run_once") {
        return;
    }
    let report = temp_path("listen-runs.jsonl");
    let (mut r, port) = serve_v4(
        &["--run_report", report.to_str().unwrap()],
        &["/bin/sh", "-c", ECHO],
    );
    for i in 0..3 {
        let mut s = connect("127.0.0.1", port);
        s.write_all(format!("n{i}\n").as_bytes()).unwrap();
        assert_eq!(read_all(&mut s), format!("echo:n{i} pid:1\n"));
    }
    // A fourth client that sends nothing: its jail waits on read.
    let _s = connect("127.0.0.1", port);
    assert!(r.wait_for("Executing '/bin/sh'"), "{:?}", r.seen);
    let until = Instant::now() + Duration::from_secs(10);
    let count = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    while count(&report) < 3 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, stderr) = stop(r, libc::SIGTERM);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let runs: Vec<u64> = lines
        .iter()
        .map(|v| v["run"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(runs, vec![1, 2, 3, 4], "{text}");
    let statuses: Vec<&str> = lines
        .iter()
        .map(|v| v["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        vec!["exited", "exited", "exited", "stopped"],
        "{text}"
    );
    assert_eq!(lines[3]["stopped_by"], libc::SIGTERM, "{text}");
}
