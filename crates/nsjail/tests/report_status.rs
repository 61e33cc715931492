//! One real jail per `--run_report` status: `exited`, `signaled`,
//! `time_limit`, `seccomp`, `oom`, `rlimit_cpu`, `setup_failed`. Each is
//! brought about the way it happens in production, and the report must name
//! it (with the exit code and signal that go with it), not a neighbour.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Runs `nsjail -Mo --chroot / <extra> --run_report R -- /bin/sh -c script`
/// and returns the output and the report.
fn jail(extra: &[&str], script: &str) -> (Out, serde_json::Value) {
    let report = temp_path("status.json");
    let r = report.to_str().unwrap();
    let mut a = vec!["-Mo", "--chroot", "/", "-q", "--run_report", r];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    let o = run_env(&a, &[], Duration::from_secs(30));
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {text:?} {o:?}"));
    (o, v)
}

/// status, exit_code, signal of a report.
fn verdict(v: &serde_json::Value) -> (&str, i64, Option<i64>) {
    (
        v["status"].as_str().unwrap_or("?"),
        v["exit_code"].as_i64().unwrap_or(-1),
        v["signal"].as_i64(),
    )
}

#[test]
fn status_exited() {
    if !root_or_skip("status_exited") {
        return;
    }
    let (o, v) = jail(&[], "exit 3");
    assert_eq!(o.code, Some(3), "{o:?}");
    assert_eq!(verdict(&v), ("exited", 3, None), "{v}");
    assert!(v["error"].is_null(), "{v}");
}

#[test]
fn status_signaled() {
    if !root_or_skip("status_signaled") {
        return;
    }
    // The shell signals itself. Without a PID namespace it is not an init
    // process, which the kernel would shield from its own SIGTERM (and
    // without one, procfs cannot be mounted in the jail's user namespace).
    let (o, v) = jail(
        &["--disable_clone_newpid", "--disable_proc"],
        "kill -TERM $$; sleep 5",
    );
    assert_eq!(o.code, Some(128 + libc::SIGTERM), "{o:?}");
    assert_eq!(
        verdict(&v),
        (
            "signaled",
            128 + i64::from(libc::SIGTERM),
            Some(libc::SIGTERM.into())
        ),
        "{v}"
    );
    // SIGKILL, as the OOM killer and the time limit use, without either.
    let (o, v) = jail(
        &["--disable_clone_newpid", "--disable_proc"],
        "kill -KILL $$; sleep 5",
    );
    assert_eq!(o.code, Some(137), "{o:?}");
    assert_eq!(verdict(&v), ("signaled", 137, Some(9)), "{v}");
}

#[test]
fn status_time_limit() {
    if !root_or_skip("status_time_limit") {
        return;
    }
    let (o, v) = jail(&["-t", "1"], "sleep 10");
    assert_eq!(o.code, Some(137), "{o:?}");
    assert_eq!(verdict(&v), ("time_limit", 137, Some(9)), "{v}");
}

#[test]
fn status_seccomp() {
    if !root_or_skip("status_seccomp") {
        return;
    }
    // dash asks for its parent pid at start-up.
    let (o, v) = jail(
        &["--seccomp_string", "KILL { getppid } DEFAULT ALLOW"],
        "echo $PPID",
    );
    assert_eq!(o.code, Some(128 + libc::SIGSYS), "{o:?}");
    assert_eq!(
        verdict(&v),
        (
            "seccomp",
            128 + i64::from(libc::SIGSYS),
            Some(libc::SIGSYS.into())
        ),
        "{v}"
    );
}

#[test]
fn status_rlimit_cpu() {
    if !root_or_skip("status_rlimit_cpu") {
        return;
    }
    // 1 s of CPU: nsjail sets soft = hard, so the kernel sends SIGXCPU or
    // SIGKILL at the limit (whichever its tick check sends first).
    let (o, v) = jail(&["--rlimit_cpu", "1"], "while :; do :; done");
    let (status, code, signal) = verdict(&v);
    assert_eq!(status, "rlimit_cpu", "{v} {o:?}");
    assert!(
        [libc::SIGXCPU, libc::SIGKILL]
            .map(i64::from)
            .contains(&signal.unwrap_or(0)),
        "{v}"
    );
    assert_eq!(code, 128 + signal.unwrap(), "{v}");
    assert_eq!(o.code.map(i64::from), Some(code), "{o:?}");
    let cpu = v["user_ms"].as_u64().unwrap() + v["sys_ms"].as_u64().unwrap();
    assert!(cpu >= 900, "killed at the limit, not before: {v}");
}

#[test]
fn status_setup_failed() {
    if !root_or_skip("status_setup_failed") {
        return;
    }
    let report = temp_path("status.json");
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--run_report",
        report.to_str().unwrap(),
        "--",
        "/nonexistent/program",
    ]);
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let v: serde_json::Value = serde_json::from_str(&text).expect("report");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert_eq!(verdict(&v), ("setup_failed", 255, None), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("/nonexistent/program"),
        "{v}"
    );
}

/// Names of the entries of `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn status_oom() {
    if !root_or_skip("status_oom") {
        return;
    }
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let v1_memory = v1.join("memory.limit_in_bytes").exists();
    let v2_memory = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"));
    if !v1_memory && !v2_memory {
        skip("no cgroup memory controller on this host (v1 memory hierarchy or v2 with memory)");
        return;
    }
    let before = (entries(v1), entries(&v1.join("NSJAIL")));
    // No swap, so that the limit is reached rather than swapped around.
    let mut extra = vec!["--detect_cgroupv2", "--cgroup_mem_max", "33554432"];
    if !v1_memory || v1.join("memory.memsw.limit_in_bytes").exists() {
        extra.extend_from_slice(&["--cgroup_mem_swap_max", "0"]);
    }
    // tail holds /dev/zero's endless "line" in memory until it is killed.
    let (o, v) = jail(&extra, "exec tail /dev/zero");
    let after = (entries(v1), entries(&v1.join("NSJAIL")));
    assert_eq!(o.code, Some(137), "{o:?}");
    assert_eq!(verdict(&v), ("oom", 137, Some(9)), "{v}");
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(after, before, "cgroup directories left behind");
}

/// The report says where the launch's time went: every phase is present,
/// the ones this jail certainly went through took time, and the program's
/// own run is counted apart from the set-up (a 300 ms sleep is in
/// `run_us`, not in any set-up phase).
#[test]
fn phases_say_where_the_time_went() {
    if !root_or_skip("phases_say_where_the_time_went") {
        return;
    }
    let (o, v) = jail(&[], "sleep 0.3");
    assert_eq!(o.code, Some(0), "{o:?}");
    let p = &v["phases_us"];
    let get = |k: &str| {
        p[k].as_u64()
            .unwrap_or_else(|| panic!("phase {k} missing: {v}"))
    };
    for k in [
        "clone_us",
        "parent_net_us",
        "cgroup_us",
        "id_maps_us",
        "child_wait_us",
        "ids_us",
        "mounts_us",
        "child_net_us",
        "process_us",
        "seccomp_exec_us",
        "run_us",
        "teardown_us",
    ] {
        get(k);
    }
    assert!(get("clone_us") > 0 && get("mounts_us") > 0, "{v}");
    assert!(get("run_us") >= 300_000, "the sleep is the run: {v}");
    let setup: u64 = [
        "clone_us",
        "cgroup_us",
        "id_maps_us",
        "mounts_us",
        "process_us",
    ]
    .iter()
    .map(|k| get(k))
    .sum();
    assert!(
        setup < 300_000,
        "set-up phases hold no part of the run: {v}"
    );
    // A jail that never ran has no phases.
    let (_, v) = jail(&["--cwd", "/nonexistent-dir"], "true");
    assert_eq!(v["status"], "setup_failed", "{v}");
    assert!(v.get("phases_us").is_none(), "{v}");
}
