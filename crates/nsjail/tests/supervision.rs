//! Exit codes, the time limit, signals to the supervisor, seccomp kills,
//! exec failures and the --run_report document.

mod common;

use std::time::Duration;

use common::*;

fn json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    let _ = std::fs::remove_file(path);
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn exit_status_is_mirrored() {
    if !root_or_skip("exit_status_is_mirrored") {
        return;
    }
    let o = sh(&[], "exit 0");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        o.stderr
            .contains("Executing '/bin/sh' for '[STANDALONE MODE]'"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("exited with status: 0, (PIDs left: 0)"),
        "{}",
        o.stderr
    );
    let o = sh(&[], "exit 3");
    assert_eq!(o.code, Some(3), "{o:?}");
    assert!(o.stderr.contains("exited with status: 3"), "{}", o.stderr);
}

#[test]
fn killed_by_signal_gives_128_plus_signal() {
    if !root_or_skip("killed_by_signal_gives_128_plus_signal") {
        return;
    }
    // Not PID 1 (no new pid namespace), so a self-sent SIGSEGV is fatal.
    let o = sh(
        &["--disable_clone_newpid", "--disable_proc"],
        "kill -SEGV $$",
    );
    assert_eq!(o.code, Some(139), "{o:?}");
    assert!(
        o.stderr.contains("terminated with signal: SIGSEGV (11)"),
        "{}",
        o.stderr
    );
    // As PID 1 of its namespace the same self-signal is ignored (nsjail too).
    let o = sh(&["-q"], "kill -SEGV $$; exit 0");
    assert_eq!(o.code, Some(0), "{o:?}");
}

#[test]
fn time_limit_kills_with_137() {
    if !root_or_skip("time_limit_kills_with_137") {
        return;
    }
    let report = temp_path("tl.json");
    let r = report.to_str().unwrap();
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-t",
        "1",
        "--run_report",
        r,
        "--",
        "/bin/sleep",
        "10",
    ]);
    assert_eq!(o.code, Some(137), "{o:?}");
    assert!(o.elapsed >= Duration::from_millis(1000), "{:?}", o.elapsed);
    assert!(
        o.elapsed < Duration::from_millis(2000),
        "limit enforced promptly: {:?}",
        o.elapsed
    );
    assert!(
        o.stderr.contains("run time >= time limit (1 >= 1)"),
        "{}",
        o.stderr
    );
    let v = json(&report);
    assert_eq!(v["status"], "time_limit");
    assert_eq!(v["exit_code"], 137);
    assert_eq!(v["signal"], 9);
    let wall = v["wall_ms"].as_u64().unwrap();
    assert!((1000..2000).contains(&wall), "{wall}");
}

#[test]
fn exec_failure_is_255_with_reason() {
    if !root_or_skip("exec_failure_is_255_with_reason") {
        return;
    }
    let report = temp_path("ef.json");
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/nonexistent/binary",
    ]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(
        o.stderr
            .contains("execve('/nonexistent/binary') failed: No such file or directory"),
        "{}",
        o.stderr
    );
    let v = json(&report);
    assert_eq!(v["status"], "setup_failed");
    assert_eq!(v["exit_code"], 255);
    assert!(
        v["error"].as_str().unwrap().contains("/nonexistent/binary"),
        "{v}"
    );
}

#[test]
fn no_path_search() {
    if !root_or_skip("no_path_search") {
        return;
    }
    let o = run(&["-Mo", "--chroot", "/", "-q", "--", "sh", "-c", "exit 0"]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.contains("execve('sh') failed"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("give its absolute path, e.g. /usr/bin/sh"),
        "the error says how to fix it: {}",
        o.stderr
    );
}

#[test]
fn seccomp_kill_is_159_and_named() {
    if !root_or_skip("seccomp_kill_is_159_and_named") {
        return;
    }
    let report = temp_path("sc.json");
    // dash reads its parent pid at start-up: getppid() is the first victim.
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "--seccomp_string",
        "KILL { getppid } DEFAULT ALLOW",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "echo $PPID",
    ]);
    assert_eq!(o.code, Some(159), "{o:?}");
    assert!(
        o.stderr
            .contains("committed a syscall/seccomp violation and exited with SIGSYS"),
        "{}",
        o.stderr
    );
    let v = json(&report);
    assert_eq!(v["status"], "seccomp");
    assert_eq!(v["signal"], 31);
    if std::fs::File::open("/dev/kmsg").is_ok() {
        assert_eq!(v["syscall"], "getppid", "{v}");
        assert!(o.stderr.contains("getppid"), "{}", o.stderr);
    } else {
        skip("syscall-name part: /dev/kmsg unreadable, the reported syscall name is not checked");
    }
}

#[test]
fn seccomp_errno_lets_the_program_continue() {
    if !root_or_skip("seccomp_errno_lets_the_program_continue") {
        return;
    }
    let o = sh(
        &["-q", "--seccomp_string", "ERRNO(1) { mkdir } DEFAULT ALLOW"],
        "mkdir /tmp/x 2>&1; exit 4",
    );
    assert_eq!(o.code, Some(4), "{o:?}");
    assert!(o.stdout.contains("Operation not permitted"), "{o:?}");
}

#[test]
fn bad_policy_is_fatal() {
    if !root_or_skip("bad_policy_is_fatal") {
        return;
    }
    let o = sh(
        &["--seccomp_string", "KILL { bogus_syscall } DEFAULT ALLOW"],
        "exit 0",
    );
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.contains("bogus_syscall"), "{}", o.stderr);
    assert!(o.stderr.contains("[F]"), "{}", o.stderr);
}

#[test]
fn run_report_for_a_normal_exit() {
    if !root_or_skip("run_report_for_a_normal_exit") {
        return;
    }
    let report = temp_path("ok.json");
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 5",
    ]);
    assert_eq!(o.code, Some(5), "{o:?}");
    let v = json(&report);
    assert_eq!(v["exit_code"], 5);
    assert_eq!(v["status"], "exited");
    assert!(v["signal"].is_null());
    assert!(v["syscall"].is_null());
    assert!(v["error"].is_null());
    assert!(v["max_rss_kb"].as_u64().unwrap() > 0, "{v}");
    let cpu = v["user_ms"].as_u64().unwrap() + v["sys_ms"].as_u64().unwrap();
    assert!(cpu <= v["wall_ms"].as_u64().unwrap() + 5, "{v}");
}

#[test]
fn log_fd_minus_one_still_shows_the_fatal_line() {
    if !root_or_skip("log_fd_minus_one_still_shows_the_fatal_line") {
        return;
    }
    let o = sh(
        &["--log_fd", "-1", "--seccomp_string", "KILL { nope_nope }"],
        "exit 0",
    );
    assert_eq!(o.code, Some(255), "{o:?}");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", o.stderr);
    assert!(lines[0].starts_with("[F]["), "{}", o.stderr);
    let o = sh(&["--log_fd", "-1"], "exit 0");
    assert_eq!(o.code, Some(0));
    assert_eq!(o.stderr, "", "silenced");
}

#[test]
fn verbose_on_the_command_line_wins_over_a_configs_log_settings() {
    if !root_or_skip("verbose_on_the_command_line_wins_over_a_configs_log_settings") {
        return;
    }
    let cfg = temp_path("silent.cfg");
    std::fs::write(&cfg, "log_fd: -1\n").unwrap();
    let c = cfg.to_str().unwrap();
    let silent = sh(&["--config", c], "exit 0");
    // -v before --config: nsjail would let the file's settings replace it.
    let verbose = sh(&["-v", "--config", c], "exit 0");
    let to_fd = sh(&["-L", "1", "--config", c], "exit 0");
    std::fs::remove_file(&cfg).unwrap();
    assert_eq!(
        (silent.code, silent.stderr.as_str()),
        (Some(0), ""),
        "{silent:?}"
    );
    assert_eq!(verbose.code, Some(0), "{verbose:?}");
    assert!(
        verbose.stderr.lines().any(|l| l.starts_with("[D][")),
        "debug lines on stderr: {verbose:?}"
    );
    assert!(
        verbose.stderr.contains("Mode: STANDALONE_ONCE"),
        "{verbose:?}"
    );
    // -L 1 on the command line (before --config too): the log goes to stdout.
    assert_eq!(
        (to_fd.code, to_fd.stderr.as_str()),
        (Some(0), ""),
        "{to_fd:?}"
    );
    assert!(to_fd.stdout.contains("Mode: STANDALONE_ONCE"), "{to_fd:?}");
}

#[test]
fn log_format_and_levels() {
    if !root_or_skip("log_format_and_levels") {
        return;
    }
    let o = sh(&[], "exit 0");
    let info = o
        .stderr
        .lines()
        .find(|l| l.contains("Mode: STANDALONE_ONCE"))
        .expect("mode line");
    // [I][2026-11-23T22:59:01+0000] Mode: ...
    assert!(info.starts_with("[I]["), "{info}");
    assert_eq!(&info[28..31], "] M", "{info}");
    let o = sh(&["-Q"], "exit 0");
    assert_eq!(o.stderr, "", "-Q prints nothing on success");
    let log = temp_path("log");
    let o = sh(&["-l", log.to_str().unwrap()], "exit 0");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(o.stderr, "", "{o:?}");
    assert!(text.contains("exited with status: 0"), "{text}");
}

fn fatal_signal_case(sig: i32, marker: &str) {
    let mut r = Running::start(&["-Mo", "--chroot", "/", "--", "/bin/sleep", marker]);
    assert!(r.wait_for("Executing"), "jail started: {:?}", r.seen);
    std::thread::sleep(Duration::from_millis(50));
    r.signal(sig);
    let (code, stderr, _) = r.finish(Duration::from_secs(10));
    assert_eq!(code, Some(128 + sig), "{stderr}");
    assert!(gone(marker), "jail process left behind");
    assert!(
        stderr.contains("terminated with signal: SIGKILL (9)"),
        "{stderr}"
    );
}

#[test]
fn sigterm_sigint_sigquit_sighup_kill_the_jail() {
    if !root_or_skip("sigterm_sigint_sigquit_sighup_kill_the_jail") {
        return;
    }
    fatal_signal_case(libc::SIGTERM, "31.101");
    fatal_signal_case(libc::SIGINT, "31.102");
    fatal_signal_case(libc::SIGQUIT, "31.103");
    fatal_signal_case(libc::SIGHUP, "31.104");
}

#[test]
fn forward_signals_delivers_and_keeps_the_time_limit() {
    if !root_or_skip("forward_signals_delivers_and_keeps_the_time_limit") {
        return;
    }
    let mut r = Running::start(&[
        "-Mo",
        "--chroot",
        "/",
        "--forward_signals",
        "--",
        "/bin/sh",
        "-c",
        "trap 'exit 7' TERM; echo ready >&2; while :; do /bin/sleep 0.05; done",
    ]);
    assert!(r.wait_for("ready"), "{:?}", r.seen);
    r.signal(libc::SIGTERM);
    let (code, stderr, _) = r.finish(Duration::from_secs(10));
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("exited with status: 7"),
        "the jail's TERM trap ran: {stderr}"
    );

    // PID 1 without a handler ignores the forwarded signal; the time limit still applies.
    let mut r = Running::start(&[
        "-Mo",
        "--chroot",
        "/",
        "--forward_signals",
        "-t",
        "1",
        "--",
        "/bin/sleep",
        "31.105",
    ]);
    assert!(r.wait_for("Executing"), "{:?}", r.seen);
    r.signal(libc::SIGTERM);
    let (code, stderr, elapsed) = r.finish(Duration::from_secs(10));
    assert_eq!(code, Some(143), "{stderr}");
    assert!(elapsed < Duration::from_millis(2000), "{elapsed:?}");
    assert!(stderr.contains("run time >= time limit"), "{stderr}");
    assert!(gone("31.105"));
}

#[test]
fn sigusr1_lists_the_jail() {
    if !root_or_skip("sigusr1_lists_the_jail") {
        return;
    }
    let mut r = Running::start(&[
        "-Mo",
        "--chroot",
        "/",
        "-t",
        "5",
        "--",
        "/bin/sleep",
        "31.106",
    ]);
    assert!(r.wait_for("Executing"), "{:?}", r.seen);
    r.signal(libc::SIGUSR1);
    assert!(
        r.wait_for("Total number of spawned namespaces: 1"),
        "{:?}",
        r.seen
    );
    assert!(r.wait_for("Remote host: [STANDALONE MODE]"), "{:?}", r.seen);
    r.signal(libc::SIGTERM);
    let (code, _, _) = r.finish(Duration::from_secs(10));
    assert_eq!(code, Some(143));
    assert!(gone("31.106"));
}

/// The pids of `pid`'s children (all its threads).
fn children_of(pid: u32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let p = t.path().join("children");
            if let Ok(s) = std::fs::read_to_string(p) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

/// nsjail dies while its child is still setting up (here: the child blocks
/// writing a warning to a full log pipe, before it sets its parent-death
/// signal). The child must notice the dead parent once the signal is set
/// and never run the program unsupervised.
#[test]
fn child_never_runs_the_program_after_nsjail_died_during_setup() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;
    if !root_or_skip("child_never_runs_the_program_after_nsjail_died_during_setup") {
        return;
    }
    let dir = temp_path("orphan");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.join("ran");
    let d = dir.to_str().unwrap();
    let script = format!("echo ran > {}", marker.to_str().unwrap());

    // A one-page log pipe, filled up: the first log line anybody writes blocks.
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on our own descriptors with integer arguments.
    unsafe {
        libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
        libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
        let junk = [b'x'; 512];
        while libc::write(wr.as_raw_fd(), junk.as_ptr().cast(), junk.len()) > 0 {}
        libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, 0);
        libc::fcntl(rd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
    }
    let mut nsjail = std::process::Command::new(NSJAIL)
        .args([
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "-u",
            "99999:99999",
            "-g",
            "99999:99999",
            // more CPUs than there are: the child warns (and blocks) before
            // its parent-death signal is set
            "--max_cpus",
            "100000",
            "-B",
            d,
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(wr))
        .spawn()
        .expect("spawn nsjail");
    let npid = nsjail.id();

    // Wait for the jail's child to block on the log pipe.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let mut blocked = None;
    while blocked.is_none() && std::time::Instant::now() < until {
        for c in children_of(npid) {
            let w = std::fs::read_to_string(format!("/proc/{c}/wchan")).unwrap_or_default();
            if w.contains("pipe_write") || w.contains("pipe_wait") {
                blocked = Some(c);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = nsjail.kill();
    let _ = nsjail.wait();
    let Some(child) = blocked else {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("the jail's child never blocked on the full log pipe (did nsjail log before the clone, or not warn about --max_cpus?)");
    };

    // Let the orphaned child go on: drain the pipe until every writer is gone.
    let mut buf = [0u8; 4096];
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: reading into our own buffer from our own descriptor.
        let n = unsafe { libc::read(rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 || std::time::Instant::now() > until {
            break;
        }
        if n < 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // SAFETY: kill with integer arguments (the orphan, if it is still there).
    unsafe { libc::kill(child, libc::SIGKILL) };
    let ran = marker.exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !ran,
        "the child went on and ran the program after nsjail had died (no supervisor, no time limit)"
    );
}

/// The run report is written after the jail ended, by root: when its path
/// is inside a directory the jail could write, a symlink or a FIFO the jail
/// left there must neither redirect the write onto a host file nor hang
/// nsjail.
#[test]
fn run_report_does_not_follow_what_the_jail_left_at_its_path() {
    use std::os::unix::fs::PermissionsExt;
    if !root_or_skip("run_report_does_not_follow_what_the_jail_left_at_its_path") {
        return;
    }
    let work = temp_path("report-work");
    let host = temp_path("report-victim");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    let victim = host.join("victim");
    std::fs::write(&victim, "host data\n").unwrap();
    let report = work.join("report.json");
    let (w, r, v) = (
        work.to_str().unwrap(),
        report.to_str().unwrap(),
        victim.to_str().unwrap(),
    );
    let symlink = run_env(
        &[
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "-B",
            w,
            "--run_report",
            r,
            "--",
            "/bin/ln",
            "-sf",
            v,
            r,
        ],
        &[],
        Duration::from_secs(20),
    );
    let victim_after = std::fs::read_to_string(&victim).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let fifo = run_env(
        &[
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "-B",
            w,
            "--run_report",
            r,
            "--",
            "/usr/bin/mkfifo",
            r,
        ],
        &[],
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&host);
    assert_eq!(
        victim_after, "host data\n",
        "the report went through the jail's symlink: {symlink:?}"
    );
    assert_ne!(
        symlink.code,
        Some(0),
        "a report that was not written is an error: {symlink:?}"
    );
    assert!(symlink.stderr.contains("--run_report"), "{symlink:?}");
    assert_ne!(fifo.code, Some(0), "{fifo:?}");
    assert!(fifo.stderr.contains("--run_report"), "{fifo:?}");
}
