//! `--check` says what this binary will do on this host: a config is
//! validated without a command, statements describe this implementation
//! (nsjail's behaviour only as "nsjail would ..."), no false warnings, and
//! the traps that make a jail fail or leak are pointed out.

mod common;

use common::*;

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/tooljet-python-full.cfg"
);

fn temp_cfg(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("nsjail-check-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn warnings(o: &Out) -> Vec<String> {
    o.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("WARNING: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_config_is_checked_without_a_command() {
    let o = run(&["--check", "--config", SEED]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.contains("a run needs a command"), "{}", o.stdout);
    // Without --check a command is still required.
    let o = run(&["--config", SEED]);
    assert_eq!(o.code, Some(255), "{o:?}");
    // And a broken config is still refused.
    let bad = temp_cfg("bad.cfg", "hostname: \n");
    let o = run(&["--check", "--config", bad.to_str().unwrap()]);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(o.code, Some(255), "{o:?}");
}

#[test]
fn statements_describe_this_binary() {
    let o = run(&["--check", "--config", SEED, "--", "/usr/bin/python3"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    let w = warnings(&o);
    let log = w
        .iter()
        .find(|l| l.starts_with("log_fd: -1"))
        .expect("log_fd warning");
    assert!(log.contains("still goes to stderr"), "{log}");
    assert!(log.contains("nsjail would exit 255"), "{log}");
    // Whatever this host has, no statement says this binary exits 255 for
    // cgroup v2 reasons: it falls back to v1.
    for l in &w {
        assert!(!l.contains(": nsjail exits 255"), "{l}");
    }
    let v2_is_cgroup2 = std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
    });
    if v2_is_cgroup2 {
        eprintln!("SKIP statements_describe_this_binary: v1 fallback line: /sys/fs/cgroup is cgroup v2 here");
    } else {
        assert!(
            o.stdout.contains("cgroup limits (v1 on this host"),
            "{}",
            o.stdout
        );
    }
}

#[test]
fn proc_entry_in_the_config_is_not_reported_missing() {
    const LINE: &str = "/proc is not mounted";
    let with = temp_cfg(
        "proc.cfg",
        "mount { dst: \"/proc\" fstype: \"proc\" }\nmount_proc: false\n",
    );
    let o = run(&[
        "--check",
        "--chroot",
        "/",
        "--disable_proc",
        "--config",
        with.to_str().unwrap(),
        "--",
        "/bin/true",
    ]);
    let _ = std::fs::remove_file(&with);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(!o.stdout.contains(LINE), "{}", o.stdout);
    // Without the entry the warning is right, and shown.
    let o = run(&[
        "--check",
        "--chroot",
        "/",
        "--disable_proc",
        "--",
        "/bin/true",
    ]);
    assert!(o.stdout.contains(LINE), "{}", o.stdout);
}

#[test]
fn traps_are_pointed_out() {
    let has = |args: &[&str], needle: &str| -> bool {
        let mut a = vec!["--check"];
        a.extend_from_slice(args);
        let o = run(&a);
        assert_eq!(o.code, Some(0), "{a:?}: {o:?}");
        warnings(&o).iter().any(|w| w.contains(needle))
    };
    let root = ["--chroot", "/"];
    // a policy that stops the program's own exec
    let kill_exec = [
        &root[..],
        &[
            "--seccomp_string",
            "KILL { execve } DEFAULT ALLOW",
            "--",
            "/bin/true",
        ],
    ]
    .concat();
    assert!(has(&kill_exec, "can never start"));
    let ok = [
        &root[..],
        &[
            "--seccomp_string",
            "KILL { ptrace } DEFAULT ALLOW",
            "--",
            "/bin/true",
        ],
    ]
    .concat();
    assert!(!has(&ok, "can never start"));
    // threads asked for by the environment under a policy that stops them (the seed)
    assert!(has(
        &["--config", SEED, "--", "/usr/bin/python3"],
        "OMP_NUM_THREADS=2"
    ));
    assert!(!has(
        &[
            "--config",
            SEED,
            "-E",
            "OMP_NUM_THREADS=1",
            "-E",
            "OPENBLAS_NUM_THREADS=1",
            "-E",
            "MKL_NUM_THREADS=1",
            "--",
            "/usr/bin/python3"
        ],
        "asks libraries for threads"
    ));
    // the host's network
    assert!(has(
        &[&root[..], &["-N", "--", "/bin/true"]].concat(),
        "shares the host's network"
    ));
    assert!(!has(
        &[&root[..], &["--", "/bin/true"]].concat(),
        "shares the host's network"
    ));
    // a program that is not in the jail
    assert!(has(&["--", "/bin/true"], "will not exist inside the jail"));
    assert!(!has(
        &[&root[..], &["--", "/bin/true"]].concat(),
        "will not exist inside the jail"
    ));
    assert!(!has(
        &["-R", "/bin", "--", "/bin/true"],
        "will not exist inside the jail"
    ));
    // an rlimit above the inherited hard limit (a new user namespace cannot raise it)
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    if hard >= 1 << 30 {
        eprintln!("SKIP traps_are_pointed_out: rlimit part: RLIMIT_NOFILE hard limit is {hard}, nothing above it to ask for");
    } else {
        let above = (hard + 1).to_string();
        assert!(has(
            &[&root[..], &["--rlimit_nofile", &above, "--", "/bin/true"]].concat(),
            "above the hard limit"
        ));
        let at = hard.to_string();
        assert!(!has(
            &[&root[..], &["--rlimit_nofile", &at, "--", "/bin/true"]].concat(),
            "above the hard limit"
        ));
    }
}

#[test]
fn exec_failure_says_the_root_is_empty() {
    if !root_or_skip("exec_failure_says_the_root_is_empty") {
        return;
    }
    let o = run(&["-Mo", "-q", "--", "/bin/true"]);
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.contains("empty tmpfs"), "{}", o.stderr);
    assert!(o.stderr.contains("/bin"), "{}", o.stderr);
}
