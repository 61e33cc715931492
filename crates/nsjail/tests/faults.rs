//! Issue 14: under faults the run report stays true and the host stays
//! clean. Each test is one hostile case run as a real jail (as root).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The tests of this file run one at a time: they measure time and memory.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cgroup v1 memory hierarchy at /sys/fs/cgroup/memory, or why not.
fn v1_memory() -> Result<PathBuf, String> {
    let p = Path::new("/sys/fs/cgroup/memory");
    if p.join("memory.limit_in_bytes").exists() {
        Ok(p.to_path_buf())
    } else {
        Err("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory".into())
    }
}

/// Names of the sub-directories of `dir` (empty when it does not exist).
fn subdirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Removes these paths (files, symlinks, empty dirs; in order) when
/// dropped, so a failing assertion leaves nothing on the host.
struct Remove(Vec<PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
        }
    }
}

/// Read the JSON run report at `path` and remove it.
fn take_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no run report at {}: {e}", path.display()));
    let _ = std::fs::remove_file(path);
    serde_json::from_str(&text).expect("report is JSON")
}

/// Item 3: pid 1 forks a child, the child is OOM-killed, pid 1 reaps it and
/// sleeps; nsjail then gets SIGTERM. The report says `stopped` (by 15), not
/// `oom`; the child's OOM kill is counted in `oom_kills`.
#[test]
fn a_childs_oom_then_sigterm_is_reported_stopped_not_oom() {
    const T: &str = "a_childs_oom_then_sigterm_is_reported_stopped_not_oom";
    let _g = serial();
    if !root_or_skip(T) {
        return;
    }
    let mem = match v1_memory() {
        Ok(m) => m,
        Err(why) => return eprintln!("SKIP {T}: {why}"),
    };
    let before = subdirs(&mem.join("NSJAIL"));
    let report = temp_path("oomchild.json");
    let _rm = Remove(vec![report.clone()]);
    let mut child = Command::new(NSJAIL)
        .args([
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "--cgroup_mem_max",
            "33554432",
            "--run_report",
            report.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            // the inner shell holds 200 MB in a variable: OOM-killed
            "sh -c 'x=$(head -c 200000000 /dev/zero | tr \"\\0\" a)'; echo reaped $?; exec sleep 100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nsjail");
    let mut line = String::new();
    let mut so = BufReader::new(child.stdout.take().unwrap());
    so.read_line(&mut line).expect("read the jail's stdout");
    child.stdout = Some(so.into_inner());
    assert!(
        line.starts_with("reaped 137"),
        "the child was not OOM-killed: {line:?}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_out(child, Instant::now(), Duration::from_secs(30));
    let v = take_report(&report);
    assert_eq!(out.code, Some(128 + libc::SIGTERM), "{out:?}");
    assert_eq!(v["status"], "stopped", "{v}");
    assert_eq!(v["stopped_by"], libc::SIGTERM, "{v}");
    assert_eq!(v["oom_killed"], false, "{v}");
    assert!(v["oom_kills"].as_u64().is_some_and(|n| n >= 1), "{v}");
    assert_eq!(subdirs(&mem.join("NSJAIL")), before, "cgroups left behind");
}

/// Busy shells pinned to CPU 0, killed when dropped.
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn start(n: usize) -> Hogs {
        use std::os::unix::process::CommandExt;
        let mut v = Vec::new();
        for _ in 0..n {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", "while :; do :; done"]).stdin(Stdio::null());
            // SAFETY: only sched_setaffinity (async-signal-safe) between fork and exec.
            unsafe { c.pre_exec(pin_cpu0) };
            v.push(c.spawn().expect("spawn a CPU hog"));
        }
        Hogs(v)
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Pin the calling process to CPU 0.
fn pin_cpu0() -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity
    // write only into it / the calling process's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Item 4: a busy loop killed at its CPU rlimit while sharing its CPU with
/// four hogs (where the kernel's tick charge runs ahead of the runtime
/// wait4 reports) is still `rlimit_cpu`, every time.
#[test]
fn cpu_rlimit_beside_cpu_hogs_is_rlimit_cpu() {
    const T: &str = "cpu_rlimit_beside_cpu_hogs_is_rlimit_cpu";
    let _g = serial();
    if !root_or_skip(T) {
        return;
    }
    let _hogs = Hogs::start(4);
    for round in 0..3 {
        let report = temp_path("cpuhog.json");
        let _rm = Remove(vec![report.clone()]);
        let mut c = Command::new(NSJAIL);
        c.args([
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "--rlimit_cpu",
            "1",
            "-t",
            "60",
            "--run_report",
            report.to_str().unwrap(),
            "--",
            "/bin/sh",
            "-c",
            "while :; do :; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: only sched_setaffinity between fork and exec.
            unsafe { c.pre_exec(pin_cpu0) };
        }
        let out = wait_out(
            c.spawn().expect("spawn nsjail"),
            Instant::now(),
            Duration::from_secs(60),
        );
        let v = take_report(&report);
        assert_eq!(out.code, Some(137), "round {round}: {out:?}");
        assert_eq!(v["status"], "rlimit_cpu", "round {round}: {v}");
    }
}

/// Item 8: an rlimit from 2^63 bytes up (here in MiB, from the command line
/// and from a config) would be negative for the kernel, so every write
/// failed; it is RLIM_INFINITY now, and `--check` says the same.
#[test]
fn near_infinite_rlimit_fsize_is_unlimited_and_check_agrees() {
    const T: &str = "near_infinite_rlimit_fsize_is_unlimited_and_check_agrees";
    if !root_or_skip(T) {
        return;
    }
    let cfg = temp_path("fsize.cfg");
    let _rm = Remove(vec![cfg.clone()]);
    std::fs::write(&cfg, "rlimit_fsize: 17592186044415\n").expect("write config");
    let script = "echo hello > /tmp/f && cat /tmp/f && ulimit -f";
    let flag = ["--rlimit_fsize", "8796093022208"];
    let conf = ["--config", cfg.to_str().unwrap()];
    // --config first: a config replaces the flags given before it.
    for extra in [&flag[..], &conf[..]] {
        let mut a = extra.to_vec();
        a.extend_from_slice(&["-Mo", "--chroot", "/", "-q", "-T", "/tmp"]);
        a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
        let o = run(&a);
        assert_eq!(o.code, Some(0), "{extra:?}: {o:?}");
        assert_eq!(o.stdout, "hello\nunlimited\n", "{extra:?}: {o:?}");

        let mut c = extra.to_vec();
        c.extend_from_slice(&["--check", "-Mo", "--chroot", "/"]);
        c.extend_from_slice(&["--", "/bin/true"]);
        let o = run(&c);
        let all = format!("{}{}", o.stdout, o.stderr);
        let line = all
            .lines()
            .find(|l| l.trim_start().starts_with("RLIMIT_FSIZE"))
            .unwrap_or_else(|| panic!("no RLIMIT_FSIZE line in --check: {all}"));
        assert!(line.contains("unlimited"), "{line}");
        assert!(!all.contains("TiB, which is no limit"), "{all}");
    }
    let _ = std::fs::remove_file(&cfg);
}

/// Item 9: the /proc nsjail adds by itself is nosuid,nodev,noexec (as
/// nsjail since PR #283), read-only or (`--proc_rw`) not.
#[test]
fn implicit_proc_is_nosuid_nodev_noexec() {
    const T: &str = "implicit_proc_is_nosuid_nodev_noexec";
    if !root_or_skip(T) {
        return;
    }
    // The last /proc line of mountinfo is the one on top.
    let script = "grep ' /proc ' /proc/self/mountinfo | tail -n 1";
    for (extra, rw) in [(&[][..], false), (&["--proc_rw"][..], true)] {
        let mut a = vec!["-q"];
        a.extend_from_slice(extra);
        let o = sh(&a, script);
        assert_eq!(o.code, Some(0), "{o:?}");
        let opts: Vec<&str> = o
            .stdout
            .split_whitespace()
            .nth(5)
            .unwrap_or_else(|| panic!("no /proc in mountinfo: {o:?}"))
            .split(',')
            .collect();
        for want in ["nosuid", "nodev", "noexec", if rw { "rw" } else { "ro" }] {
            assert!(opts.contains(&want), "{want} missing on /proc: {opts:?}");
        }
    }
}

/// Item 10: a jail with its own network namespace cannot create AF_VSOCK
/// sockets (EAFNOSUPPORT, our filter beside the policy, with or without a
/// user policy); `--allow_vsock` or sharing the host's network lets it.
#[test]
fn af_vsock_is_denied_in_a_jail_with_its_own_network() {
    const T: &str = "af_vsock_is_denied_in_a_jail_with_its_own_network";
    if !root_or_skip(T) {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        return eprintln!("SKIP {T}: /usr/bin/python3 is not installed");
    }
    // Creates a vsock socket (binds nothing): prints "ok" or the errno.
    let py = "import socket\ntry:\n    socket.socket(40, socket.SOCK_STREAM).close(); print('ok')\nexcept OSError as e:\n    print(e.errno)";
    let jail = |extra: &[&str]| {
        let mut a = vec!["-Mo", "--chroot", "/", "-q"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--", "/usr/bin/python3", "-c", py]);
        let o = run(&a);
        assert_eq!(o.code, Some(0), "{extra:?}: {o:?}");
        o.stdout.trim().to_string()
    };
    let eaf = libc::EAFNOSUPPORT.to_string();
    assert_eq!(jail(&[]), eaf, "vsock open in a jail with its own network");
    assert_eq!(
        jail(&["--seccomp_string", "ALLOW { socket } DEFAULT ALLOW"]),
        eaf,
        "a user policy allowing socket must not reopen vsock"
    );
    // Where the host has vsock, the opt-outs really open it.
    let host = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .output()
        .expect("run python3");
    if String::from_utf8_lossy(&host.stdout).trim() != "ok" {
        return eprintln!("SKIP {T} (opt-outs): this host has no vsock transport");
    }
    assert_eq!(jail(&["--allow_vsock"]), "ok");
    assert_eq!(jail(&["--disable_clone_newnet"]), "ok");
}

/// Item 12: a config file of blank lines only is accepted (as nsjail: only
/// a 0-byte file is an error) and the jail runs.
#[test]
fn a_config_of_blank_lines_runs_and_an_empty_file_is_refused() {
    const T: &str = "a_config_of_blank_lines_runs_and_an_empty_file_is_refused";
    if !root_or_skip(T) {
        return;
    }
    let blank = temp_path("blank.cfg");
    let _rm = Remove(vec![blank.clone()]);
    std::fs::write(&blank, "\n\n   \n\t\n").expect("write config");
    let o = run(&[
        "--config",
        blank.to_str().unwrap(),
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--",
        "/bin/echo",
        "hi",
    ]);
    std::fs::write(&blank, "").expect("truncate config");
    let e = run(&["--config", blank.to_str().unwrap(), "--", "/bin/true"]);
    let _ = std::fs::remove_file(&blank);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "hi\n");
    assert_eq!(e.code, Some(255), "{e:?}");
    assert!(e.stderr.contains("empty"), "{e:?}");
}

/// Item 5: an i386 `int 0x80` getpid (20) from a 64-bit program, killed by
/// the filter's architecture check, is reported as `getpid` of `i386`, not
/// as x86_64's 20 (`writev`).
#[cfg(target_arch = "x86_64")]
#[test]
fn compat_seccomp_kill_is_named_from_the_i386_table() {
    const T: &str = "compat_seccomp_kill_is_named_from_the_i386_table";
    if !root_or_skip(T) {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        return eprintln!("SKIP {T}: /usr/bin/python3 is not installed");
    }
    if std::fs::File::open("/dev/kmsg").is_err() {
        return eprintln!("SKIP {T}: /dev/kmsg is not readable (no audit record to name the call)");
    }
    // Python is one thread: the thread seccomp kills is the process.
    // mov eax, 20; int 0x80; ret  (i386 getpid)
    let py = "import ctypes, mmap\n\
              m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n\
              m.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))\n\
              f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))\n\
              print('survived', f())";
    let report = temp_path("compat.json");
    let _rm = Remove(vec![report.clone()]);
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--seccomp_string",
        "KILL { ptrace } DEFAULT ALLOW",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/usr/bin/python3",
        "-c",
        py,
    ]);
    let v = take_report(&report);
    if o.stdout.contains("survived") {
        return eprintln!("SKIP {T}: the i386 call was not killed here: {o:?}");
    }
    assert_eq!(v["status"], "seccomp", "{v} {o:?}");
    assert_eq!(v["syscall"], "getpid", "{v}");
    assert_eq!(v["syscall_arch"], "i386", "{v}");
}

/// Item 6: ten busy children killed at the time limit: with cgroup CPU
/// accounting the report counts their time (`cpu_source: "cgroup"`);
/// without it, it says the figures are the first process's `rusage`.
#[test]
fn cpu_time_of_the_whole_jail_and_its_source() {
    const T: &str = "cpu_time_of_the_whole_jail_and_its_source";
    let _g = serial();
    if !root_or_skip(T) {
        return;
    }
    let report = temp_path("cputree.json");
    let _rm = Remove(vec![report.clone()]);
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "-t",
        "2",
        "--cgroup_pids_max",
        "20",
        "--cgroup_cpu_ms_per_sec",
        "2000",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do (while :; do :; done) & done; sleep 100",
    ]);
    let v = take_report(&report);
    assert_eq!(v["status"], "time_limit", "{v} {o:?}");
    let cpu = v["user_ms"].as_u64().unwrap() + v["sys_ms"].as_u64().unwrap();
    match v["cpu_source"].as_str() {
        // 2 s of two CPUs (the cpu limit allows 2000 ms/s), minus start-up.
        Some("cgroup") => assert!(cpu >= 1_000, "the children's CPU time is missing: {v}"),
        Some("rusage") => {
            assert!(
                cpu < 1_000,
                "rusage of pid 1 cannot hold its unreaped children: {v}"
            );
            eprintln!("SKIP {T} (whole-tree part): no cgroup CPU accounting here (cpuacct not with cpu); the report says rusage");
        }
        other => panic!("no cpu_source: {other:?} {v}"),
    }
}

/// A pseudo-terminal pair: (master, slave), both owned.
fn open_pty() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r take the fd we just
    // opened and a buffer we own; the fds become owned Files.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let master = std::fs::File::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)?;
        Ok((master, slave))
    }
}
use std::os::unix::fs::OpenOptionsExt;

/// (ECHO set, rows, cols) of a terminal.
fn term_state(f: &std::fs::File) -> (bool, u16, u16) {
    use std::os::fd::AsRawFd;
    // SAFETY: tcgetattr/ioctl(TIOCGWINSZ) fill structs we own from an fd we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(f.as_raw_fd(), &mut t), 0);
        let mut w: libc::winsize = std::mem::zeroed();
        assert_eq!(libc::ioctl(f.as_raw_fd(), libc::TIOCGWINSZ, &mut w), 0);
        (t.c_lflag & libc::ECHO != 0, w.ws_row, w.ws_col)
    }
}

/// Item 2: a jail on the caller's terminal switches echo off and sets the
/// window to 1x1; nsjail puts both back when the jail ends, by itself or
/// when nsjail gets SIGTERM.
#[test]
fn terminal_modes_and_size_are_restored() {
    const T: &str = "terminal_modes_and_size_are_restored";
    if !root_or_skip(T) {
        return;
    }
    let (master, slave) = match open_pty() {
        Ok(p) => p,
        Err(e) => return eprintln!("SKIP {T}: no pseudo-terminal: {e}"),
    };
    let before = term_state(&slave);
    assert!(before.0, "a fresh pty echoes");
    for (script, sigterm) in [
        ("stty -echo rows 1 cols 1", false),
        (
            "stty -echo rows 1 cols 1; echo changed; exec sleep 100",
            true,
        ),
    ] {
        let mut child = Command::new(NSJAIL)
            .args(["-Mo", "--chroot", "/", "-q", "--", "/bin/sh", "-c", script])
            .stdin(slave.try_clone().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsjail");
        if sigterm {
            let mut line = String::new();
            let mut so = BufReader::new(child.stdout.take().unwrap());
            so.read_line(&mut line).expect("read the jail's stdout");
            assert_eq!(line, "changed\n");
            assert_eq!(term_state(&slave), (false, 1, 1), "the jail changed it");
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.stdout = Some(so.into_inner());
        }
        let out = wait_out(child, Instant::now(), Duration::from_secs(30));
        assert!(out.code.is_some(), "{out:?}");
        assert_eq!(
            term_state(&slave),
            before,
            "sigterm={sigterm}: not restored: {out:?}"
        );
    }
    drop(master);
}

/// Item 11: run 1 with a read-write bind plants `p -> /etc/passwd` in it;
/// run 2 with the same rw bind and `-R <shared>/p:/home/f` is refused with
/// one line naming the link; `--allow_bind_symlinks` lets it, and without
/// the rw bind the link is not the jail's to plant.
#[test]
fn bind_source_through_a_planted_symlink_is_refused() {
    const T: &str = "bind_source_through_a_planted_symlink_is_refused";
    if !root_or_skip(T) {
        return;
    }
    let shared = temp_path("shared");
    let _rm = Remove(vec![shared.join("p"), shared.clone()]);
    std::fs::create_dir(&shared).expect("mkdir shared");
    let s = shared.to_str().unwrap().to_string();
    let rw = format!("{s}:/mnt/data");
    let o = sh(
        &["-q", "-T", "/mnt", "-B", &rw],
        "ln -s /etc/passwd /mnt/data/p",
    );
    assert_eq!(o.code, Some(0), "run 1: {o:?}");
    let link = shared.join("p");
    assert!(link
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink()));

    let ro = format!("{s}/p:/home/f");
    let read = |extra: &[&str]| {
        let mut a = vec!["-q", "-T", "/home", "-T", "/mnt"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["-R", &ro]);
        sh(&a, "head -c 5 /home/f")
    };
    let refused = read(&["-B", &rw]);
    let allowed = read(&["-B", &rw, "--allow_bind_symlinks"]);
    let no_rw = read(&[]);
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir(&shared);
    assert_eq!(refused.code, Some(255), "{refused:?}");
    assert_eq!(refused.stdout, "", "{refused:?}");
    let want = format!("'{}' is a symlink inside", link.display());
    let lines: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|l| l.contains(&want))
        .collect();
    assert_eq!(lines.len(), 1, "one line naming the link: {refused:?}");
    assert!(lines[0].contains("--allow_bind_symlinks"), "{}", lines[0]);
    assert_eq!(allowed.code, Some(0), "{allowed:?}");
    assert_eq!(allowed.stdout, "root:", "{allowed:?}");
    assert_eq!(no_rw.code, Some(0), "{no_rw:?}");
}
