//! The library API (`nsjail::Command`): typed reports and errors, stdio,
//! and many jails launched concurrently from one multi-threaded program
//! while other threads allocate and log, leaving the callers' signal state
//! as it was.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::root_or_skip;
use nsjail::{Command, Status, Stdio};

/// A logger that takes a lock for every record (the kind a forked child
/// must never touch).
struct LockingLogger(Mutex<Vec<String>>);

impl log::Log for LockingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let mut v = self.0.lock().unwrap();
        v.push(format!("{}", r.args()));
        if v.len() > 10_000 {
            v.clear();
        }
    }
    fn flush(&self) {}
}

/// The calling thread's signal mask and the SIGTTIN/SIGTTOU handlers.
fn signal_state() -> (Vec<i32>, [usize; 2]) {
    // SAFETY: querying the mask (set = NULL) into a zeroed sigset.
    let mask = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
        (1..65)
            .filter(|s| libc::sigismember(&old, *s) == 1)
            .collect()
    };
    let handler = |sig| {
        // SAFETY: querying an action (act = NULL) into a zeroed sigaction.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            old.sa_sigaction
        }
    };
    (mask, [handler(libc::SIGTTIN), handler(libc::SIGTTOU)])
}

fn echo(word: &str) -> Command {
    let mut c = Command::new("/bin/echo");
    c.arg(word).chroot("/");
    c
}

#[test]
fn jails_from_eight_threads_while_others_allocate_and_log() {
    if !root_or_skip("jails_from_eight_threads_while_others_allocate_and_log") {
        return;
    }
    let logger: &'static LockingLogger = Box::leak(Box::new(LockingLogger(Mutex::new(Vec::new()))));
    let _ = log::set_logger(logger);
    log::set_max_level(log::LevelFilter::Trace);
    let stop = Arc::new(AtomicBool::new(false));
    let noise: Vec<_> = (0..3)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut junk: Vec<Vec<u8>> = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    junk.push(vec![n as u8; 64 + (i % 4096) as usize]);
                    if junk.len() > 256 {
                        junk.clear();
                    }
                    log::info!("noise thread {n} record {i}");
                    i += 1;
                }
                i
            })
        })
        .collect();
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    let ok = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let ok = ok.clone();
            std::thread::spawn(move || {
                let before = signal_state();
                for i in 0..PER_THREAD {
                    let word = format!("t{t}-j{i}");
                    let out = echo(&word).output().expect("jail runs");
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout),
                        format!("{word}\n"),
                        "{:?}",
                        out.report
                    );
                    assert_eq!(out.report.status, Status::Exited, "{:?}", out.report);
                    assert_eq!(out.report.exit_code, 0);
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                assert_eq!(signal_state(), before, "thread {t}: signal state changed");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker thread");
    }
    stop.store(true, Ordering::Relaxed);
    let logged: u64 = noise.into_iter().map(|n| n.join().unwrap()).sum();
    assert_eq!(ok.load(Ordering::Relaxed), THREADS * PER_THREAD);
    assert!(logged > 0, "the noise threads ran");
    eprintln!(
        "library: {} jails from {THREADS} threads in {:.2} s beside {logged} log records",
        THREADS * PER_THREAD,
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn reports_are_typed_for_each_outcome() {
    if !root_or_skip("reports_are_typed_for_each_outcome") {
        return;
    }
    let sh = |script: &str| {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]).chroot("/");
        c
    };
    let r = sh("exit 3").status().unwrap();
    assert_eq!((r.status, r.exit_code), (Status::Exited, 3));
    // (without a PID namespace: PID 1 ignores its own default-action signals)
    let r = sh("kill -USR1 $$")
        .flags(["--disable_clone_newpid", "--disable_proc"])
        .status()
        .unwrap();
    assert_eq!(
        (r.status, r.signal, r.exit_code),
        (Status::Signaled, Some(libc::SIGUSR1), 128 + libc::SIGUSR1)
    );
    let r = sh("sleep 30")
        .time_limit(Duration::from_millis(500))
        .status()
        .unwrap();
    assert_eq!(r.status, Status::TimeLimit, "{r:?}");
    let r = sh("exec /bin/true")
        .seccomp_policy("KILL { execve } DEFAULT ALLOW")
        .status()
        .unwrap();
    // The policy is installed before the program's own exec: it never starts.
    assert_eq!(r.status, Status::Seccomp, "{r:?}");
    let r = Command::new("/no/such/program").status().unwrap();
    assert_eq!(r.status, Status::SetupFailed);
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("/no/such/program")),
        "{r:?}"
    );
}

#[test]
fn bad_settings_are_typed_errors_before_anything_runs() {
    let e = Command::new("/bin/true")
        .flag("--no_such_flag")
        .spec()
        .unwrap_err();
    assert!(matches!(e, nsjail::Error::Config(_)), "{e}");
    let e = Command::new("/bin/true")
        .seccomp_policy("KILL { no_such_syscall_xyz }")
        .spawn()
        .unwrap_err();
    assert!(matches!(e, nsjail::Error::Spec(_)), "{e}");
    assert!(e.to_string().contains("no_such_syscall_xyz"), "{e}");
    let e = Command::new("/bin/true").flag("-Ml").spawn().unwrap_err();
    assert!(matches!(e, nsjail::Error::Unsupported(_)), "{e}");
    // A config held in memory, with a flag after it winning.
    let spec = Command::new("/bin/true")
        .config_text("mem.cfg", "hostname: \"from-config\"\ntime_limit: 9\n")
        .flags(["--time_limit", "4"])
        .spec()
        .unwrap();
    assert_eq!(spec.process.hostname, "from-config");
    assert_eq!(spec.time_limit, 4);
    let e = Command::new("/bin/true")
        .config_text("broken.cfg", "hostname: \n")
        .spec()
        .unwrap_err();
    assert!(e.to_string().contains("broken.cfg"), "{e}");
}

#[test]
fn stdin_piped_in_and_stdout_piped_out() {
    if !root_or_skip("stdin_piped_in_and_stdout_piped_out") {
        return;
    }
    use std::io::{Read, Write};
    let mut child = Command::new("/bin/cat")
        .chroot("/")
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .stderr(Stdio::Null)
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"through the jail\n")
        .unwrap();
    drop(child.stdin.take());
    let mut got = String::new();
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    let r = child.wait().unwrap();
    assert_eq!(got, "through the jail\n");
    assert_eq!(r.status, Status::Exited);
}

#[test]
fn kill_and_drop_stop_the_jail_and_leave_nothing() {
    if !root_or_skip("kill_and_drop_stop_the_jail_and_leave_nothing") {
        return;
    }
    let mut child = Command::new("/bin/sleep")
        .arg("60")
        .chroot("/")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    let r = child.wait().unwrap();
    assert_eq!(r.exit_code, 128 + libc::SIGTERM, "{r:?}");
    let sup = {
        let child = Command::new("/bin/sleep")
            .arg("60")
            .chroot("/")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        child.id()
        // dropped here: the supervisor stops the jail and is reaped
    };
    assert!(
        !std::path::Path::new(&format!("/proc/{sup}")).exists(),
        "supervisor {sup} still exists after drop"
    );
}
