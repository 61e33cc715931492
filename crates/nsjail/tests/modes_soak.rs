//! LISTEN soak: many short connections through one supervisor, then check
//! that it leaked nothing — no zombie child, no descriptor (counted in
//! /proc/<pid>/fd), no per-jail cgroup directory, no mount.
//!
//! The documented size is 2,000 connections, 50 at a time (the default);
//! `NSJAIL_SOAK_CONNS` / `NSJAIL_SOAK_PARALLEL` change it. Bounded: every
//! client has a 20 s read timeout and the whole run a 120 s watchdog.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The supervisor's open descriptors (fd number → what it points at).
fn fds(pid: u32) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.parse().ok()?;
                    let t = std::fs::read_link(e.path()).ok()?;
                    Some((n, t.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The supervisor's descriptors once they stop changing: a finished jail's
/// connection and pidfd are closed by the event loop a moment after the
/// child is reaped, later still on a loaded machine. Stable = the same set
/// over 10 samples 50 ms apart (panics if that never happens in 10 s).
fn steady_fds(pid: u32) -> Vec<(u32, String)> {
    let until = Instant::now() + Duration::from_secs(10);
    let (mut last, mut same) = (fds(pid), 0);
    while same < 10 {
        assert!(
            Instant::now() < until,
            "supervisor fds never settled: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let now = fds(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// (children, zombies) of `pid`.
fn children(pid: u32) -> (usize, usize) {
    let (mut n, mut z) = (0, 0);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces: split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(1).and_then(|x| x.parse::<u32>().ok()) == Some(pid) {
            n += 1;
            if f[0] == "Z" {
                z += 1;
            }
        }
    }
    (n, z)
}

fn jail_cgroups(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("NSJAIL."))
                .collect()
        })
        .unwrap_or_default()
}

fn mount_count(pid: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn listen_soak_leaks_nothing() {
    if !root_or_skip("listen_soak_leaks_nothing") {
        return;
    }
    let total = env_num("NSJAIL_SOAK_CONNS", 2000);
    let par = env_num("NSJAIL_SOAK_PARALLEL", 50).max(1);
    // A pids cgroup per jail when the host has the v1 pids controller.
    let pids_parent = "/sys/fs/cgroup/pids/NSJAIL";
    let use_cg = std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists();
    let mut args = LISTEN_V4.to_vec();
    args.extend(["-q", "--max_conns", "200"]);
    if use_cg {
        args.extend_from_slice(&["--cgroup_pids_max", "32"]);
    } else {
        skip("cgroup leak part: no v1 pids controller here");
    }
    args.extend_from_slice(&["--", "/bin/sh", "-c", "read l; echo \"$l\""]);
    let host_mounts = mount_count("self");
    let r = Running::start(&args);
    // -q hides the "Listening" line: find the port from the socket table.
    let pid = r.child.id();
    let port = {
        let until = Instant::now() + Duration::from_secs(10);
        let mut port = None;
        while port.is_none() && Instant::now() < until {
            port = listening_port(pid);
            std::thread::sleep(Duration::from_millis(20));
        }
        port.expect("server listening")
    };
    let sup_mounts = mount_count(&pid.to_string());

    let run_batch = |count: usize| -> Duration {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let threads: Vec<_> = (0..par.min(count))
            .map(|t| {
                let next = next.clone();
                std::thread::spawn(move || {
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        let msg = format!("t{t}\n");
                        s.write_all(msg.as_bytes()).unwrap();
                        let mut got = String::new();
                        s.read_to_string(&mut got).expect("echo and close");
                        assert_eq!(got, msg);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
        start.elapsed()
    };
    let settle = |what: &str| {
        let until = Instant::now() + Duration::from_secs(10);
        while children(pid).0 > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            children(pid),
            (0, 0),
            "{what}: no jail (live or zombie) left"
        );
    };
    // Warm-up (first allocations of the event loop's tables), then measure.
    let warm = par.min(total);
    run_batch(warm);
    settle("after warm-up");
    let fds_before = steady_fds(pid);
    let elapsed = run_batch(total);
    settle("after the soak");
    let fds_after = steady_fds(pid);
    let left_cg = jail_cgroups(pids_parent);
    let sup_mounts_after = mount_count(&pid.to_string());
    let host_mounts_after = mount_count("self");
    eprintln!(
        "soak: {total} connections, {par} at a time, in {:.1} s ({:.0}/s); supervisor fds {} -> {}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        fds_before.len(),
        fds_after.len()
    );
    r.signal(libc::SIGTERM);
    // finish() counts from nsjail's start: 20 s to stop, however long the
    // soak took on a loaded machine.
    let limit = r.start.elapsed() + Duration::from_secs(20);
    let (code, stderr, _) = r.finish(limit);
    assert_eq!(code, Some(0), "{stderr}");
    // Every descriptor open after 2,000 jails was open before them: one
    // leaked per jail (or per some jails) shows as a new fd here.
    let new: Vec<_> = fds_after
        .iter()
        .filter(|f| !fds_before.contains(f))
        .collect();
    assert!(
        new.is_empty(),
        "descriptors leaked: {new:?} (before: {fds_before:?})"
    );
    assert!(left_cg.is_empty(), "cgroup dirs left: {left_cg:?}");
    assert_eq!(
        sup_mounts_after, sup_mounts,
        "no mount leaked into the supervisor's namespace"
    );
    assert_eq!(host_mounts_after, host_mounts, "no mount leaked into ours");
    assert!(elapsed < Duration::from_secs(120), "bounded: {elapsed:?}");
}

/// The port `pid` listens on (from /proc/net/tcp6 and its socket inodes).
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if let Ok(t) = std::fs::read_link(e.path()) {
            let t = t.to_string_lossy().into_owned();
            if let Some(i) = t.strip_prefix("socket:[").and_then(|x| x.strip_suffix(']')) {
                inodes.push(i.to_string());
            }
        }
    }
    let tab = std::fs::read_to_string("/proc/net/tcp6").ok()?;
    for l in tab.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        // local_address rem_address st ... inode (field 9); st 0A = LISTEN
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = f[1].rsplit(':').next()?;
            return u16::from_str_radix(port, 16).ok();
        }
    }
    None
}
