//! `seccomp_unotify`: real jails traced through a seccomp user-notification
//! listener. The report (text proto) must list what the jail touched with
//! exact counts, and the jail must behave exactly as without tracing.
//! Network: 127.0.0.1 only.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const PYTHON: &str = "/usr/bin/python3";

/// The top-level `fs_access { ... }` / `net_access { ... }` blocks of a report.
fn blocks<'a>(report: &'a str, kind: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    let mut depth = 0i32;
    for l in report.lines() {
        if depth == 0 && l == format!("{kind} {{") {
            cur = Some(Vec::new());
        }
        depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
        if let Some(c) = cur.as_mut() {
            c.push(l);
            if depth == 0 {
                out.push(cur.take().unwrap());
            }
        }
    }
    out
}

/// The entry's own `count` (indented by two spaces, not a syscall's).
fn entry_count(b: &[&str]) -> Option<u64> {
    b.iter()
        .find_map(|l| l.strip_prefix("  count: "))
        .and_then(|v| v.parse().ok())
}

fn has(b: &[&str], line: &str) -> bool {
    b.iter().any(|l| l.trim() == line)
}

/// Accept up to `n` connections on `l` (bounded), returning what each sent.
fn accept_n(l: TcpListener, n: usize) -> mpsc::Receiver<Vec<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < until {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut v = Vec::new();
                    let _ = s.read_to_end(&mut v);
                    got.push(String::from_utf8_lossy(&v).into_owned());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = tx.send(got);
    });
    rx
}

fn python_jail(extra: &[&str], script: &str) -> Out {
    let mut a = vec!["-Mo", "--chroot", "/", "--disable_clone_newnet"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", PYTHON, "-c", script]);
    run(&a)
}

#[test]
fn report_lists_paths_and_address_with_counts() {
    if !root_or_skip("report_lists_paths_and_address_with_counts") {
        return;
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("SKIP report_lists_paths_and_address_with_counts: {PYTHON} is missing");
        return;
    }
    let missing = format!("/nonexistent-unotify-probe-{}", std::process::id());
    // A file only this test opens (python itself reads /etc/passwd & co.).
    let data = temp_path("unotify-data");
    std::fs::write(&data, "x").unwrap();
    let data_s = data.to_str().unwrap().to_string();
    let script_for = |port: u16| {
        format!(
            "import socket, sys\n\
             for i in range(3):\n    open('{data_s}').read()\n\
             try:\n    open('{missing}')\nexcept OSError:\n    print('missing-ok')\n\
             for i in range(2):\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    s.sendall(b'ping')\n    s.close()\n\
             print('jail-done')\n\
             sys.exit(7)\n"
        )
    };

    // Without tracing: the reference behaviour.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = accept_n(l, 2);
    let plain = python_jail(&[], &script_for(port));
    let plain_peer = peer.recv().unwrap();

    // Traced.
    let report = temp_path("unotify-report.txt");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = accept_n(l, 2);
    let o = python_jail(
        &[
            "--seccomp_unotify",
            "--seccomp_unotify_report",
            report.to_str().unwrap(),
        ],
        &script_for(port),
    );
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&data);
    assert_eq!(plain.code, Some(7), "{plain:?}");
    assert_eq!(plain_peer, vec!["ping", "ping"]);
    assert_eq!(o.code, plain.code, "{o:?}");
    assert_eq!(o.stdout, plain.stdout, "output unchanged by tracing");
    assert_eq!(o.stdout, "missing-ok\njail-done\n");
    assert_eq!(peer.recv().unwrap(), vec!["ping", "ping"]);
    assert!(
        o.stderr
            .contains("seccomp_unotify: tracing the file and socket syscalls of pid="),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("unotify report:\n"), "{}", o.stderr);
    assert!(
        !text.is_empty(),
        "report file written; stderr: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&text),
        "the logged report is the file's text"
    );

    // The data file opened read-only exactly 3 times.
    let fs = blocks(&text, "fs_access");
    let passwd: Vec<_> = fs
        .iter()
        .filter(|b| has(b, &format!("path: \"{data_s}\"")) && has(b, "mode: RDONLY"))
        .collect();
    assert_eq!(passwd.len(), 1, "{text}");
    let b = passwd[0];
    assert_eq!(entry_count(b), Some(3), "{b:#?}");
    assert!(has(b, "name: \"openat\""), "{b:#?}");
    assert!(
        has(b, "jail_type: REGULAR") && has(b, "main_type: REGULAR"),
        "{b:#?}"
    );
    assert!(
        has(b, "exists_in_jail: true") && has(b, "exists_in_main: true"),
        "{b:#?}"
    );

    // The missing file: tried once, exists nowhere.
    let miss: Vec<_> = fs
        .iter()
        .filter(|b| has(b, &format!("path: \"{missing}\"")))
        .collect();
    assert_eq!(miss.len(), 1, "{text}");
    assert_eq!(entry_count(miss[0]), Some(1), "{:#?}", miss[0]);
    assert!(has(miss[0], "jail_type: NONEXISTENT"), "{:#?}", miss[0]);
    assert!(has(miss[0], "exists_in_jail: false"), "{:#?}", miss[0]);

    // The program itself was exec'd.
    assert!(
        fs.iter().any(|b| has(b, "name: \"execve\"")),
        "execve recorded: {text}"
    );

    // 127.0.0.1:port connected twice.
    let net = blocks(&text, "net_access");
    let conn: Vec<_> = net
        .iter()
        .filter(|b| has(b, "endpoint: \"127.0.0.1\"") && has(b, &format!("port: {port}")))
        .collect();
    assert_eq!(conn.len(), 1, "{text}");
    let b = conn[0];
    assert!(has(b, "type: IPV4"), "{b:#?}");
    assert_eq!(entry_count(b), Some(2), "{b:#?}");
    assert!(has(b, "name: \"connect\""), "{b:#?}");
    assert!(
        b.iter()
            .any(|l| l.contains("SOCK_STREAM") && l.contains("IPPROTO_TCP")),
        "socket type decoded: {b:#?}"
    );
}

#[test]
fn policy_still_decides_under_tracing() {
    if !root_or_skip("policy_still_decides_under_tracing") {
        return;
    }
    // ERRNO wins over USER_NOTIF: mkdir fails as without tracing.
    let o = sh(
        &[
            "--seccomp_unotify",
            "--seccomp_string",
            "ERRNO(1) { mkdir, mkdirat } DEFAULT ALLOW",
        ],
        "mkdir /tmp/unotify-x 2>&1; cat /etc/passwd >/dev/null; exit 4",
    );
    assert_eq!(o.code, Some(4), "{o:?}");
    assert!(o.stdout.contains("Operation not permitted"), "{o:?}");
    assert!(o.stderr.contains("path: \"/etc/passwd\""), "{}", o.stderr);
    assert!(
        !o.stderr.contains("path: \"/tmp/unotify-x\""),
        "mkdir never reached the tracer: {}",
        o.stderr
    );

    // A KILL still kills (159) and the report is still printed.
    let o = sh(
        &[
            "--seccomp_unotify",
            "--seccomp_string",
            "KILL { getppid } DEFAULT ALLOW",
        ],
        "echo $PPID",
    );
    assert_eq!(o.code, Some(159), "{o:?}");
    assert!(o.stderr.contains("unotify report:"), "{}", o.stderr);
}

#[test]
fn listen_traces_one_jail_at_a_time() {
    if !root_or_skip("listen_traces_one_jail_at_a_time") {
        return;
    }
    let report = temp_path("unotify-listen.txt");
    let mut args = LISTEN_V4.to_vec();
    args.extend([
        "--seccomp_unotify",
        "--seccomp_unotify_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/passwd >/dev/null; read l; echo \"got:$l\"",
    ]);
    let mut r = Running::start(&args);
    assert!(r.wait_for("Listening on "), "server up: {:?}", r.seen);
    let line = r.seen.iter().find(|l| l.contains("Listening on ")).unwrap();
    let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    let open = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let mut a = open();
    assert!(
        r.wait_for("tracing the file and socket syscalls of pid="),
        "{:?}",
        r.seen
    );
    let mut b = open();
    assert!(r.wait_for("this jail is not traced"), "{:?}", r.seen);
    for (s, w) in [(&mut a, "one"), (&mut b, "two")] {
        s.write_all(format!("{w}\n").as_bytes()).unwrap();
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        assert_eq!(String::from_utf8_lossy(&v), format!("got:{w}\n"));
    }
    r.signal(libc::SIGTERM);
    let (code, stderr, _) = r.finish(Duration::from_secs(15));
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert_eq!(code, Some(0), "{stderr}");
    // Only the first jail's `cat` is in the report.
    let passwd: Vec<_> = blocks(&text, "fs_access")
        .into_iter()
        .filter(|b| has(b, "path: \"/etc/passwd\"") && has(b, "mode: RDONLY"))
        .collect();
    assert_eq!(passwd.len(), 1, "{text}\n{stderr}");
    assert_eq!(entry_count(&passwd[0]), Some(1), "{text}");
}

#[test]
fn rerun_traces_each_run_in_turn() {
    if !root_or_skip("rerun_traces_each_run_in_turn") {
        return;
    }
    let report = temp_path("unotify-rerun.txt");
    let mut r = Running::start(&[
        "-Mr",
        "--chroot",
        "/",
        "--seccomp_unotify",
        "--seccomp_unotify_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/passwd >/dev/null; sleep 0.2",
    ]);
    // Runs traced one after the other (the 4th may be stopped before its cat).
    for _ in 0..4 {
        assert!(
            r.wait_for("tracing the file and socket syscalls of pid="),
            "{:?}",
            r.seen
        );
    }
    r.signal(libc::SIGINT);
    let (code, stderr, _) = r.finish(Duration::from_secs(15));
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert_eq!(code, Some(130), "{stderr}");
    let passwd: Vec<_> = blocks(&text, "fs_access")
        .into_iter()
        .filter(|b| has(b, "path: \"/etc/passwd\"") && has(b, "mode: RDONLY"))
        .collect();
    assert_eq!(passwd.len(), 1, "{text}");
    // Every traced run that got to its `cat` counted once.
    let traced = stderr
        .matches("tracing the file and socket syscalls of pid=")
        .count() as u64;
    let n = entry_count(&passwd[0]).unwrap();
    assert!(
        n >= 3 && n <= traced,
        "{n} opens for {traced} traced runs: {text}"
    );
    assert!(!stderr.contains("this jail is not traced"), "{stderr}");
}

#[test]
fn execve_mode_warns_and_runs_untraced() {
    if !root_or_skip("execve_mode_warns_and_runs_untraced") {
        return;
    }
    let o = run(&[
        "-Me",
        "--chroot",
        "/",
        "--seccomp_unotify",
        "--",
        "/bin/sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(o.code, Some(5), "{o:?}");
    assert!(
        o.stderr
            .contains("seccomp_unotify is not available in EXECVE mode"),
        "{}",
        o.stderr
    );
}
