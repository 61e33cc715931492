//! Helpers for the integration tests: launch the built `nsjail`, collect
//! its output with a watchdog, skip (with a printed reason) what the host
//! cannot do.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const NSJAIL: &str = env!("CARGO_BIN_EXE_nsjail");

/// What a run produced.
#[derive(Debug)]
pub struct Out {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Out {
    /// stdout lines with whitespace runs collapsed.
    pub fn norm(&self) -> String {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The running test's name: libtest runs each test on a thread named after it.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unknown_test")
        .to_string()
}

/// Prints `SKIP <test>: <reason>`, the one form `test.sh` collects into its
/// summary. For a test that skips only a part, the reason says which part.
pub fn skip(reason: impl std::fmt::Display) {
    eprintln!("SKIP {}: {reason}", test_name());
}

/// True when running as root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP {test}: needs root (launches jails with all namespaces)");
    }
    root
}

/// Run nsjail with `args`, optional env changes, and a watchdog of `limit`.
pub fn run_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let mut cmd = Command::new(NSJAIL);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn nsjail");
    wait_out(child, start, limit)
}

/// Run nsjail with `args` (30 s watchdog).
pub fn run(args: &[&str]) -> Out {
    run_env(args, &[], Duration::from_secs(30))
}

/// `nsjail -Mo --chroot / <extra> -- /bin/sh -c <script>`.
pub fn sh(extra: &[&str], script: &str) -> Out {
    let mut a = vec!["-Mo", "--chroot", "/"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run(&a)
}

/// Wait for `child` with a watchdog; kill it and panic on timeout.
pub fn wait_out(mut child: Child, start: Instant, limit: Duration) -> Out {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nsjail did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Out {
        code: status.code(),
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
        elapsed,
    }
}

/// A started nsjail whose stderr is followed line by line.
pub struct Running {
    /// The nsjail process.
    pub child: Child,
    /// Lines of stderr as they arrive.
    pub lines: mpsc::Receiver<String>,
    /// Everything seen so far.
    pub seen: Vec<String>,
    /// When it was started.
    pub start: Instant,
}

impl Running {
    /// Start nsjail with `args`, stdout discarded, stderr followed.
    pub fn start(args: &[&str]) -> Running {
        let start = Instant::now();
        let mut child = Command::new(NSJAIL)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsjail");
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
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
            start,
        }
    }

    /// Wait (up to 10 s) for a stderr line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Send a signal to nsjail.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Wait for exit (up to `limit`), returning the code and the full stderr.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String, Duration) {
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if self.start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "nsjail did not exit within {limit:?}; stderr so far: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.start.elapsed();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        (status.code(), self.seen.join("\n"), elapsed)
    }
}

/// Pids whose command line contains `marker` (to check nothing is left).
pub fn procs_with(marker: &str) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                if c.contains(marker) && !c.contains("nsjail") {
                    v.push(pid);
                }
            }
        }
    }
    v
}

/// Wait up to 2 s for no process matching `marker` to remain.
pub fn gone(marker: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if procs_with(marker).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A unique temporary path (removed by the test).
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("nsjail-test-{tag}-{}-{n}", std::process::id()))
}

/// The argv start of a LISTEN server on 127.0.0.1 with an ephemeral port
/// (read back from its "Listening on" line) over `--chroot /`.
pub const LISTEN_V4: [&str; 7] = [
    "-Ml",
    "--port",
    "0",
    "--bindhost",
    "127.0.0.1",
    "--chroot",
    "/",
];
