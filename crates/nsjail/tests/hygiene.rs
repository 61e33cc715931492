//! Supervisor hygiene: EXECVE mode leaves no cgroup directory behind, the
//! supervisor raises its own RLIMIT_NOFILE soft limit (what `rlimit_nofile
//! soft` gives a jail), and the glibc clone3 trap is pointed out.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PIDS: &str = "/sys/fs/cgroup/pids";

/// Is `/sys/fs/cgroup/pids` a cgroup v1 pids hierarchy?
fn v1_pids() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|mi| {
        mi.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&PIDS)
                && l.contains(" - cgroup ")
                && l.rsplit(' ')
                    .next()
                    .is_some_and(|o| o.split(',').any(|x| x == "pids"))
        })
    })
}

/// Wait up to 2 s for none of `paths` to exist.
fn all_gone(paths: &[PathBuf]) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        if paths.iter().all(|p| !p.exists()) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run nsjail; returns (exit code, its pid = the exec'd program's pid in -Me, stderr).
fn run_with_pid(args: &[&str]) -> (Option<i32>, u32, String) {
    let child = Command::new(NSJAIL)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nsjail");
    let pid = child.id();
    let o = wait_out(child, Instant::now(), Duration::from_secs(30));
    (o.code, pid, o.stderr)
}

#[test]
fn execve_mode_leaves_no_cgroup_dir() {
    if !root_or_skip("execve_mode_leaves_no_cgroup_dir") {
        return;
    }
    if !v1_pids() {
        eprintln!(
            "SKIP execve_mode_leaves_no_cgroup_dir: {PIDS} is not a cgroup v1 pids hierarchy here"
        );
        return;
    }
    // The default parent (NSJAIL): removed too when this run created it.
    let parent = Path::new(PIDS).join("NSJAIL");
    let parent_existed = parent.exists();
    let (code, pid, stderr) = run_with_pid(&[
        "-Me",
        "--disable_clone_newuser",
        "--cgroup_pids_max",
        "10",
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
    ]);
    // Without a chroot the root is empty: /bin/sh may not exist there, and
    // that failure must not leave anything either.
    let mut left = vec![parent.join(format!("NSJAIL.{pid}"))];
    if !parent_existed {
        left.push(parent.clone());
    }
    assert!(all_gone(&left), "left behind: {left:?}\n{stderr}");
    assert!(
        code == Some(3) || stderr.contains("execve('/bin/sh') failed"),
        "{code:?} {stderr}"
    );

    // With a root to run in: the program's exit code, a parent of our own
    // (created, then removed), the limit really applied.
    let own = format!("nsjail-test-exe-{}", std::process::id());
    let (code, pid, stderr) = run_with_pid(&[
        "-Me",
        "--chroot",
        "/",
        "--disable_clone_newuser",
        "--disable_clone_newcgroup",
        "--cgroup_pids_max",
        "10",
        "--cgroup_pids_parent",
        &own,
        "--",
        "/bin/sh",
        "-c",
        "grep -q NSJAIL /proc/self/cgroup || exit 9; exit 3",
    ]);
    let left = vec![
        Path::new(PIDS).join(&own).join(format!("NSJAIL.{pid}")),
        Path::new(PIDS).join(&own),
    ];
    assert!(all_gone(&left), "left behind: {left:?}\n{stderr}");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(gone("nsjail-cgclean"), "the watcher outlived the program");
}

#[test]
fn execve_mode_kills_what_the_program_left_in_its_cgroup() {
    if !root_or_skip("execve_mode_kills_what_the_program_left_in_its_cgroup") {
        return;
    }
    if !v1_pids() {
        eprintln!("SKIP execve_mode_kills_what_the_program_left_in_its_cgroup: no cgroup v1 pids hierarchy");
        return;
    }
    let own = format!("nsjail-test-exe-bg-{}", std::process::id());
    let marker = format!("{}", 400_000 + std::process::id() % 100_000);
    // No pid namespace: a background sleep would outlive the shell.
    let (code, pid, stderr) = run_with_pid(&[
        "-Me",
        "--chroot",
        "/",
        "--disable_clone_newuser",
        "--disable_clone_newpid",
        "--disable_proc",
        "--cgroup_pids_max",
        "10",
        "--cgroup_pids_parent",
        &own,
        "--",
        "/bin/sh",
        "-c",
        &format!("sleep {marker} >/dev/null 2>&1 & exit 0"),
    ]);
    let left = vec![
        Path::new(PIDS).join(&own).join(format!("NSJAIL.{pid}")),
        Path::new(PIDS).join(&own),
    ];
    let cleaned = all_gone(&left);
    let no_sleep = gone(&format!("sleep {marker}"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(cleaned, "left behind: {left:?}\n{stderr}");
    assert!(no_sleep, "the background process was left running");
}

#[test]
fn rlimit_nofile_soft_is_the_raised_supervisor_limit() {
    if !root_or_skip("rlimit_nofile_soft_is_the_raised_supervisor_limit") {
        return;
    }
    // u32 on glibc, c_int on musl.
    #[allow(clippy::unnecessary_cast)]
    let (_, hard) = nsjail::sys::get_rlimit(libc::RLIMIT_NOFILE as u32).expect("getrlimit");
    if hard <= 1024 {
        eprintln!("SKIP rlimit_nofile_soft_is_the_raised_supervisor_limit: hard RLIMIT_NOFILE is {hard}, nothing to raise to");
        return;
    }
    let want = hard.min(8192);
    // nsjail started with a low soft limit (512) through a shell.
    let o = Command::new("/bin/sh")
        .args([
            "-c",
            "ulimit -Sn 512 && exec \"$0\" \"$@\"",
            NSJAIL,
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "--rlimit_nofile",
            "soft",
            "--",
            "/bin/sh",
            "-c",
            "ulimit -Sn; ulimit -Hn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let o = wait_out(o, Instant::now(), Duration::from_secs(30));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, format!("{want}\n{want}\n"), "{o:?}");

    // The default (VALUE 32) is unaffected.
    let o = sh(&["-q"], "ulimit -n");
    assert_eq!(o.stdout, "32\n", "{o:?}");
}

fn check(policy: &str) -> Out {
    run(&[
        "-Mo",
        "--chroot",
        "/",
        "--check",
        "--seccomp_string",
        policy,
        "--",
        "/bin/true",
    ])
}

const TRAP_LINE: &str = "glibc creates threads with clone3";

#[test]
fn check_prints_the_policy_compilers_warnings() {
    // --check needs no privileges. ERRNO above 4095 and a C Kafel argument name
    // the kernel passes elsewhere (futex_wait's flags) compile, with warnings.
    let o = check("ERRNO(5000) { futex_wait { flags == 1 } } DEFAULT ALLOW");
    assert_eq!(o.code, Some(0), "{o:?}");
    for needle in [
        "seccomp policy 1:7: warning: ERRNO(5000): the kernel caps",
        "seccomp policy 1:28: warning: 'flags' of futex_wait reads argument 3",
    ] {
        assert!(o.stdout.contains(needle), "no '{needle}' in: {}", o.stdout);
    }
    let o = check("ERRNO(4095) { futex_wait { mask == 1 } } DEFAULT ALLOW");
    assert!(!o.stdout.contains("seccomp policy"), "{}", o.stdout);
}

#[test]
fn clone3_trap_is_pointed_out() {
    // --check needs no privileges.
    let o = check("KILL { clone3 } DEFAULT ALLOW");
    assert_eq!(o.code, Some(0), "{o:?}");
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains(TRAP_LINE))
        .unwrap_or_else(|| panic!("no clone3 warning: {}", o.stdout));
    assert!(line.contains("WARNING"), "{line}");
    assert!(line.contains("ERRNO(38) { clone3 }"), "{line}");
    assert!(line.contains("clone3 gets KILL"), "{line}");
    assert!(
        !o.stdout.contains("warnings: none"),
        "the warning is counted with the others: {}",
        o.stdout
    );
    let o = check("ERRNO(1) { clone3 } DEFAULT ALLOW");
    assert!(o.stdout.contains("clone3 gets ERRNO(1)"), "{}", o.stdout);

    if !root_or_skip("clone3_trap_is_pointed_out (jail start)") {
        return;
    }
    let o = sh(
        &["--seccomp_string", "KILL { clone3 } DEFAULT ALLOW"],
        "exit 0",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("[W]") && l.contains(TRAP_LINE)),
        "{}",
        o.stderr
    );
}

#[test]
fn consistent_policies_get_no_clone3_warning() {
    for p in [
        "ERRNO(38) { clone3 } DEFAULT ALLOW",
        "KILL { clone, clone3 } DEFAULT ALLOW",
        "DEFAULT ALLOW",
    ] {
        let o = check(p);
        assert_eq!(o.code, Some(0), "{o:?}");
        assert!(!o.stdout.contains(TRAP_LINE), "{p}: {}", o.stdout);
    }
    // The seed config denies both on purpose.
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/tooljet-python-full.cfg"
    );
    if Path::new(seed).exists() {
        let o = run(&["--config", seed, "--check"]);
        assert!(!o.stdout.contains(TRAP_LINE), "{}", o.stdout);
        assert!(!o.stderr.contains(TRAP_LINE), "{}", o.stderr);
    }
    if !root_or_skip("consistent_policies_get_no_clone3_warning (jail start)") {
        return;
    }
    let o = sh(
        &["--seccomp_string", "KILL { clone, clone3 } DEFAULT ALLOW"],
        "exit 0",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(!o.stderr.contains(TRAP_LINE), "{}", o.stderr);
}

/// `--check` of a daemon config answers on the terminal: a bad policy is
/// reported on stderr, not only in the daemon's log file, and no log file
/// is created or written.
#[test]
fn check_of_a_daemon_config_reports_on_stderr() {
    let log = std::path::Path::new("/var/log/nsjail.log");
    let before = std::fs::metadata(log).map(|m| m.len()).ok();
    let o = run(&[
        "--check",
        "--daemon",
        "--seccomp_string",
        "KILL { no_such_syscall_xyz } DEFAULT ALLOW",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(
        o.stderr
            .contains("Undefined identifier 'no_such_syscall_xyz'"),
        "{}",
        o.stderr
    );
    let after = std::fs::metadata(log).map(|m| m.len()).ok();
    assert_eq!(before, after, "{} was created or written", log.display());
}

/// Two independent nsjail runs share a cgroup parent that did not exist:
/// the first creates it, the second finds it; the first ends while the
/// second still uses it. The last one out removes it, so nothing is left.
/// A parent the operator made is never removed.
#[test]
fn shared_created_cgroup_parent_is_removed_by_the_last_run() {
    if !root_or_skip("shared_created_cgroup_parent_is_removed_by_the_last_run") {
        return;
    }
    if !v1_pids() {
        eprintln!("SKIP shared_created_cgroup_parent_is_removed_by_the_last_run: no cgroup v1 pids hierarchy");
        return;
    }
    let name = format!("nsjail-test-shared-{}", std::process::id());
    let parent = Path::new(PIDS).join(&name);
    let start = |secs: &str| {
        Command::new(NSJAIL)
            .args(["-Mo", "--chroot", "/", "-Q", "--cgroup_pids_max", "16"])
            .args(["--cgroup_pids_parent", &name, "--", "/bin/sleep", secs])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nsjail")
    };
    let mut first = start("0.6");
    let until = Instant::now() + Duration::from_secs(5);
    while !parent.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        parent.exists(),
        "the first run created {}",
        parent.display()
    );
    let mut second = start("1.5");
    assert!(first.wait().unwrap().success());
    assert!(
        parent.exists(),
        "still in use by the second run when the first ended"
    );
    assert!(second.wait().unwrap().success());
    let gone = all_gone(std::slice::from_ref(&parent));
    if !gone {
        let _ = std::fs::remove_dir(&parent);
    }
    assert!(gone, "{} left behind", parent.display());

    // An operator's own parent (plain mkdir) stays.
    std::fs::create_dir(&parent).unwrap();
    let ok = start("0").wait().unwrap().success();
    let kept = parent.exists();
    let _ = std::fs::remove_dir(&parent);
    assert!(ok);
    assert!(kept, "an operator-made parent must not be removed");
}

/// The `[F]` line's message (after `main():N `).
fn fatal_message(stderr: &str) -> Option<String> {
    let line = stderr.lines().rev().find(|l| l.starts_with("[F]"))?;
    let at = line.find("():")?;
    let rest = &line[at + 3..];
    Some(rest.split_once(' ')?.1.to_string())
}

/// `--check` refuses exactly what a launch refuses before clone, with the
/// same message: both go through the one lowering. (Before it, `--check`
/// said "valid" for a bogus MACVLAN address or an unset mount env prefix,
/// while the launch exited 255.)
#[test]
fn check_and_launch_refuse_the_same_inputs() {
    let dir = std::env::temp_dir().join(format!("nsjail-check-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("prefix.cfg");
    std::fs::write(
        &prefix,
        "mount { src: \"/b\" dst: \"/d\" is_bind: true prefix_src_env: \"NSJAIL_CHECK_AGREE_UNSET\" }\n",
    )
    .unwrap();
    let nul = dir.join("nul.cfg");
    std::fs::write(&nul, "envar: \"A=x\\000y\"\n").unwrap();
    let rule = dir.join("rule.cfg");
    std::fs::write(&rule, "traffic_rule { dport: 70000 }\n").unwrap();
    let rule = rule.to_string_lossy().into_owned();
    let usernet = dir.join("usernet.cfg");
    std::fs::write(&usernet, "user_net { rule4 { dport: 70000 } }\n").unwrap();
    let prefix = prefix.to_string_lossy().into_owned();
    let nul = nul.to_string_lossy().into_owned();
    let usernet = usernet.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--macvlan_iface", "eth0", "--macvlan_vs_ip", "bogus"],
            "macvlan_vs_ip: 'bogus'",
        ),
        (
            vec!["--macvlan_vs_nm", "255.0.255.0", "-I", "eth0"],
            "macvlan_vs_nm",
        ),
        (vec!["--config", &prefix], "NSJAIL_CHECK_AGREE_UNSET"),
        (vec!["--config", &nul], "NUL byte"),
        (vec!["--config", &usernet], "user_net.rule4 #1: dport"),
        (
            vec!["-Ml", "--port", "0", "--bindhost", "localhost"],
            "bindhost",
        ),
        (vec!["-N", "--iface_own", "veth9"], "iface_own"),
        (vec!["--iface_own", "bad/name"], "iface_own"),
        (vec!["--config", &rule], "traffic_rule #1: dport"),
        (
            vec!["--seccomp_string", "KILL { no_such_call_xyz }"],
            "sandboxing policy",
        ),
    ];
    for (args, needle) in cases {
        let mut check = args.clone();
        check.extend(["--check", "--", "/bin/true"]);
        let c = run(&check);
        let mut launch = vec!["-Mo"];
        launch.extend(args.iter().copied());
        launch.extend(["--", "/bin/true"]);
        // -Ml in the case wins over the -Mo in front
        let l = run(&launch);
        assert_eq!(c.code, Some(255), "--check {args:?}: {c:?}");
        assert_eq!(l.code, Some(255), "launch {args:?}: {l:?}");
        let (cm, lm) = (fatal_message(&c.stderr), fatal_message(&l.stderr));
        assert!(
            cm.as_deref().is_some_and(|m| m.contains(needle)),
            "--check {args:?}: {}",
            c.stderr
        );
        assert_eq!(cm, lm, "{args:?}: --check and launch differ");
        assert!(!c.stdout.contains("is valid"), "{}", c.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14 item 1 (v1): nsjail killed with SIGKILL leaves its jail cgroup
/// and the parent it created; the next run that uses that parent removes
/// them (they are marked as ours, nobody holds their lock, they are empty)
/// and leaves nothing itself.
#[test]
fn cgroups_of_a_sigkilled_nsjail_are_removed_by_the_next_run() {
    const T: &str = "cgroups_of_a_sigkilled_nsjail_are_removed_by_the_next_run";
    if !root_or_skip(T) {
        return;
    }
    if !v1_pids() {
        eprintln!("SKIP {T}: {PIDS} is not a cgroup v1 pids hierarchy here");
        return;
    }
    let own = format!("nsjail-test-kill9-{}", std::process::id());
    let parent = Path::new(PIDS).join(&own);
    let args = |prog: &'static str| {
        vec![
            "-Mo".to_string(),
            "--chroot".into(),
            "/".into(),
            "-q".into(),
            "--cgroup_pids_max".into(),
            "10".into(),
            "--cgroup_pids_parent".into(),
            own.clone(),
            "--".into(),
            "/bin/sh".into(),
            "-c".into(),
            prog.into(),
        ]
    };
    let mut victim = Command::new(NSJAIL)
        .args(args("exec sleep 1000"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nsjail");
    let jail_dir = || -> Option<PathBuf> {
        std::fs::read_dir(&parent)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("NSJAIL."))
            })
    };
    let until = Instant::now() + Duration::from_secs(10);
    let dir = loop {
        if let Some(d) = jail_dir() {
            if std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty()) {
                break d;
            }
        }
        if Instant::now() >= until {
            let _ = victim.kill();
            let _ = victim.wait();
            let _ = std::fs::remove_dir(&parent);
            panic!("the jail's cgroup never appeared in {}", parent.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    victim.kill().expect("SIGKILL nsjail");
    victim.wait().expect("reap nsjail");
    // The jail dies with its supervisor (PID namespace, PDEATHSIG).
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty()) {
        assert!(
            Instant::now() < until,
            "the jail outlived its SIGKILLed nsjail"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left_by_kill = dir.exists();

    let out = run(&args("exit 0")
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let gone_after = all_gone(&[dir.clone(), parent.clone()]);
    // Never leave anything, whatever happened above.
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_dir(&parent);
    assert!(
        left_by_kill,
        "nothing was left by the SIGKILL: the test proves nothing"
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        gone_after,
        "the next run left the orphan {} behind\n{out:?}",
        dir.display()
    );
}

/// EXECVE mode's namespace init (`ns-init`, PID 1 of the new PID
/// namespace) dies with the program, also when the program ends or is
/// killed right away: the init must hold its parent-death signal before the
/// program can exit (it once lingered on the host, reparented to PID 1).
#[test]
fn execve_namespace_init_never_outlives_the_program() {
    if !root_or_skip("execve_namespace_init_never_outlives_the_program") {
        return;
    }
    let marker = format!("nsinit-{}", std::process::id());
    let leftovers = || -> Vec<String> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&marker) {
                v.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
        v
    };
    let scripts = ["exit 0", "kill -9 $$", "exit 3"];
    let mut kids = Vec::new();
    for round in 0..8 {
        for s in scripts {
            kids.push(
                Command::new(NSJAIL)
                    .args(["-Me", "--chroot", "/", "-Q", "--hostname", &marker, "--"])
                    .args(["/bin/sh", "-c", s])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("round {round}: {e}")),
            );
        }
    }
    for mut k in kids {
        let _ = k.wait();
    }
    let until = Instant::now() + Duration::from_secs(3);
    while !leftovers().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = leftovers();
    for l in &left {
        if let Some(pid) = l.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid we found and SIGKILL; cleanup only.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    assert!(left.is_empty(), "processes left on the host: {left:?}");
}
