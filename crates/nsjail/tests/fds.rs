//! No descriptor of the supervisor reaches the jailed program: in every mode,
//! with a log file, a run report, cgroups, a seccomp policy and unotify
//! tracing, the program holds exactly its stdin, stdout and stderr.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Lists the program's descriptors, then prints an end marker.
const LIST: &str = "ls -l /proc/self/fd; echo FD-LIST-END";

/// The descriptors in an `ls -l /proc/self/fd` listing, leaving out the one
/// `ls` itself opened to read the directory.
fn fds(listing: &str) -> BTreeSet<u32> {
    listing
        .lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            let own_dir = target.starts_with("/proc/") && target.ends_with("/fd");
            (!own_dir).then_some(fd)
        })
        .collect()
}

fn assert_only_stdio(what: &str, listing: &str) {
    assert!(
        listing.contains("FD-LIST-END"),
        "{what}: no listing: {listing}"
    );
    assert_eq!(
        fds(listing),
        BTreeSet::from([0, 1, 2]),
        "{what}: the program holds more than stdio:\n{listing}"
    );
}

/// Temporary files for the supervisor to hold open while the jail runs.
struct Files {
    log: std::path::PathBuf,
    report: std::path::PathBuf,
}

impl Files {
    fn new(tag: &str) -> Files {
        Files {
            log: temp_path(&format!("{tag}.log")),
            report: temp_path(&format!("{tag}.json")),
        }
    }

    /// Flags that make the supervisor open descriptors of its own.
    fn flags(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--log".into(),
            self.log.display().to_string(),
            "--run_report".into(),
            self.report.display().to_string(),
            "--seccomp_string".into(),
            "ERRNO(1) { ptrace } DEFAULT ALLOW".into(),
        ];
        if std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
            v.extend(["--cgroup_pids_max".into(), "64".into()]);
        }
        v
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.report);
    }
}

fn args<'a>(mode: &'a [&'a str], extra: &'a [String], cmd: &'a [&'a str]) -> Vec<&'a str> {
    let mut a: Vec<&str> = mode.to_vec();
    a.extend(extra.iter().map(String::as_str));
    a.push("--");
    a.extend_from_slice(cmd);
    a
}

#[test]
fn once_with_log_report_cgroup_and_seccomp() {
    if !root_or_skip("once_with_log_report_cgroup_and_seccomp") {
        return;
    }
    let f = Files::new("fds-once");
    let mut extra = f.flags();
    let o = run(&args(
        &["-Mo", "--chroot", "/"],
        &extra,
        &["/bin/sh", "-c", LIST],
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_only_stdio("ONCE", &o.stdout);

    extra.push("--seccomp_unotify".into());
    let o = run(&args(
        &["-Mo", "--chroot", "/"],
        &extra,
        &["/bin/sh", "-c", LIST],
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_only_stdio("ONCE with seccomp_unotify", &o.stdout);
}

#[test]
fn rerun_runs() {
    if !root_or_skip("rerun_runs") {
        return;
    }
    let f = Files::new("fds-rerun");
    let extra = f.flags();
    let mut child = Command::new(NSJAIL)
        .args(args(
            &["-Mr", "--chroot", "/"],
            &extra,
            &["/bin/sh", "-c", LIST],
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nsjail");
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        // Two whole runs: the first and one started while a run was live.
        let mut lines = BufReader::new(out).lines();
        let mut runs = Vec::new();
        let mut cur = String::new();
        while runs.len() < 2 {
            let Some(Ok(l)) = lines.next() else { break };
            cur.push_str(&l);
            cur.push('\n');
            if l == "FD-LIST-END" {
                runs.push(std::mem::take(&mut cur));
            }
        }
        runs
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let runs = reader.join().unwrap();
    assert_eq!(runs.len(), 2, "two RERUN runs listed their fds: {runs:?}");
    for r in &runs {
        assert_only_stdio("RERUN", r);
    }
}

#[test]
fn listen_connection() {
    if !root_or_skip("listen_connection") {
        return;
    }
    let f = Files::new("fds-listen");
    let extra = f.flags();
    let a = args(&LISTEN_V4, &extra, &["/bin/sh", "-c", LIST]);
    // --log sends the "Listening on" line to the file: follow it there.
    let mut child = Command::new(NSJAIL)
        .args(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nsjail");
    let mut port = None;
    for _ in 0..250 {
        let log = std::fs::read_to_string(&f.log).unwrap_or_default();
        if let Some(l) = log.lines().find(|l| l.contains("Listening on ")) {
            port = l
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse::<u16>().ok());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let listing = port.map(|p| {
        let mut s = TcpStream::connect(("127.0.0.1", p)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = String::new();
        let _ = s.read_to_string(&mut v);
        v
    });
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let listing = listing.expect("the server logged its port");
    assert_only_stdio("LISTEN", &listing);
}

#[test]
fn execve_mode() {
    if !root_or_skip("execve_mode") {
        return;
    }
    let f = Files::new("fds-execve");
    // -Me writes no report and runs no seccomp_unotify; log file and cgroup
    // (with its watcher) and the policy still apply.
    let extra: Vec<String> = f.flags().into_iter().skip(4).collect();
    let mut all = vec![
        "--log".to_string(),
        f.log.display().to_string(),
        "--disable_clone_newuser".to_string(),
    ];
    all.extend(extra);
    let o = run(&args(
        &["-Me", "--chroot", "/"],
        &all,
        &["/bin/sh", "-c", LIST],
    ));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_only_stdio("EXECVE", &o.stdout);
}

#[test]
fn listing_parser_leaves_out_only_ls_own_directory() {
    let sample = "total 0\n\
        lrwx------ 1 root root 64 Nov 24 00:00 0 -> /dev/null\n\
        l-wx------ 1 root root 64 Nov 24 00:00 1 -> pipe:[1]\n\
        l-wx------ 1 root root 64 Nov 24 00:00 2 -> pipe:[2]\n\
        lr-x------ 1 root root 64 Nov 24 00:00 3 -> /proc/7/fd\n\
        lr-x------ 1 root root 64 Nov 24 00:00 5 -> /tmp/nsjail.log\n";
    assert_eq!(fds(sample), BTreeSet::from([0, 1, 2, 5]));
}
