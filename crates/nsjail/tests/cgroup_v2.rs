//! cgroup v2. On any host (root): the controller-less tree operations
//! (mkdir, cgroup.procs, cgroup.kill, rmdir) and the v2→v1 fallback that
//! writes nothing. In the QEMU guest (`NSJAIL_VMTEST=1`, see vmtest/): the
//! real limits — memory.max OOM, pids.max, cpu.max, controller enabling, the
//! no-internal-process rule — each checked to leave nothing behind.
//!
//! The tests of this file run one at a time (one of them moves the whole
//! test process between cgroups).

#[macro_use]
mod cgroup_support;

use cgroup_support::{assert_gone, is_root, unique, v1_hierarchy, Action, Child};
use nsjail::cgroup::{parse, Cgroups, RealFs, Request};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cgroup2 mount and our own v2 cgroup directory in it.
fn v2() -> Result<(PathBuf, PathBuf), String> {
    if !is_root() {
        return Err("needs root".into());
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let m = parse::parse_mountinfo(&mi)
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .ok_or("no cgroup2 mount on this host")?;
    let pc = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let own = parse::own_cgroup_dir(&pc, std::slice::from_ref(&m), &m.mount_point, None)
        .ok_or("no 0:: line in /proc/self/cgroup")?;
    Ok((m.mount_point, own))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn write(p: &Path, v: &str) {
    std::fs::write(p, v).unwrap_or_else(|e| panic!("write '{v}' to {}: {e}", p.display()))
}

/// Only inside the VM harness: these tests may enable controllers in the
/// root's cgroup.subtree_control, which must never happen on a real host.
fn vm() -> Result<PathBuf, String> {
    if std::env::var_os("NSJAIL_VMTEST").is_none() {
        return Err(
            "cgroup v2 limits run only in the QEMU guest (NSJAIL_VMTEST=1): vmtest/run.sh".into(),
        );
    }
    let (mount, _) = v2()?;
    let ctl = read(&mount.join("cgroup.controllers"));
    for c in ["memory", "pids", "cpu"] {
        if !parse::controller_list(&ctl).iter().any(|x| x == c) {
            return Err(format!("{} lacks the {c} controller", mount.display()));
        }
    }
    Ok(mount)
}

#[test]
fn v2_tree_operations_without_controllers() {
    let _g = serial();
    let (mount, own) = match v2() {
        Ok(x) => x,
        Err(why) => skip!("{why}"),
    };
    let root_subtree = read(&mount.join("cgroup.subtree_control"));
    let parent = own.join(unique("v2tree"));
    std::fs::create_dir(&parent).expect("mkdir test parent");
    let cg = Cgroups::v2_forced(&parent, Request::default(), Arc::new(RealFs)).expect("v2");
    assert_eq!(cg.version(), Some(2));
    let mut child = Child::spawn(Action::Sleep);
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = parent.join(format!("NSJAIL.{}", child.pid));
    assert_eq!(jail.dirs(), vec![dir.clone()]);
    let rel = dir.strip_prefix(&mount).unwrap();
    assert_eq!(
        child.cgroup(None).as_deref(),
        Some(format!("/{}", rel.display()).as_str())
    );
    assert!(read(&dir.join("cgroup.procs")).contains(&child.pid.to_string()));
    child.go();
    jail.kill_all(); // cgroup.kill
    let exit = child.wait();
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    let stats = jail.stats();
    assert!(
        stats.cpu_usage_us.is_some(),
        "cpu.stat usage_usec: {stats:?}"
    );
    assert!(!stats.oom_killed);
    jail.remove().expect("remove");
    drop(cg);
    std::fs::remove_dir(&parent).expect("rmdir test parent");
    assert_gone(&[dir, parent]);
    assert_eq!(read(&mount.join("cgroup.subtree_control")), root_subtree);
}

#[test]
fn v2_without_controllers_falls_back_to_v1_and_writes_nothing() {
    let _g = serial();
    let (mount, _) = match v2() {
        Ok(x) => x,
        Err(why) => skip!("{why}"),
    };
    let ctl = read(&mount.join("cgroup.controllers"));
    if parse::controller_list(&ctl).iter().any(|c| c == "pids") {
        skip!("{} offers pids: no fallback to test here", mount.display());
    }
    if !v1_hierarchy("/sys/fs/cgroup/pids", "pids") {
        skip!("no v1 pids hierarchy to fall back to");
    }
    let before = read(&mount.join("cgroup.subtree_control"));
    let parent = unique("fallback");
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_use_cgroupv2(true);
    cfg.set_cgroupv2_mount(mount.to_string_lossy().into_owned());
    cfg.set_cgroup_pids_max(3);
    cfg.set_cgroup_pids_parent(parent.clone());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("v1 fallback");
    assert_eq!(cg.version(), Some(1));
    let mut child = Child::spawn(Action::Forks(5));
    let jail = cg.create_for(child.pid).expect("create_for");
    child.go();
    assert_eq!(child.wait().code, Some(2), "pids.max 3 in v1");
    jail.remove().expect("remove");
    assert_gone(&[Path::new("/sys/fs/cgroup/pids").join(&parent)]);
    assert_eq!(read(&mount.join("cgroup.subtree_control")), before);
}

fn v2_cfg(mount: &Path) -> nsjail_config::NsJailConfig {
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_use_cgroupv2(true);
    cfg.set_cgroupv2_mount(mount.to_string_lossy().into_owned());
    cfg
}

fn has(list_file: &Path, c: &str) -> bool {
    parse::controller_list(&read(list_file))
        .iter()
        .any(|x| x == c)
}

#[test]
fn vm_v2_memory_max_oom_kill() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let mut cfg = v2_cfg(&mount);
    cfg.set_cgroup_mem_max(32 << 20);
    cfg.set_cgroup_mem_swap_max(0);
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert_eq!(cg.version(), Some(2));
    assert!(
        has(&mount.join("cgroup.subtree_control"), "memory"),
        "memory enabled"
    );
    let mut child = Child::spawn(Action::Alloc(256 << 20));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = mount.join(format!("NSJAIL.{}", child.pid));
    assert_eq!(
        read(&dir.join("memory.max")).trim(),
        (32u64 << 20).to_string()
    );
    assert_eq!(read(&dir.join("memory.swap.max")).trim(), "0");
    child.go();
    let exit = child.wait();
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    let stats = jail.stats();
    assert!(stats.oom_killed, "{stats:?}");
    let peak = stats.mem_peak_bytes.expect("memory.peak");
    assert!(peak > (16 << 20) && peak <= (32 << 20), "peak {peak}");
    jail.remove().expect("remove");
    assert_gone(&[dir]);
}

#[test]
fn vm_v2_memory_under_the_limit_is_fine() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let mut cfg = v2_cfg(&mount);
    cfg.set_cgroup_mem_max(64 << 20);
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    let mut child = Child::spawn(Action::Alloc(16 << 20));
    let jail = cg.create_for(child.pid).expect("create_for");
    child.go();
    assert_eq!(child.wait().code, Some(0));
    let stats = jail.stats();
    assert!(!stats.oom_killed);
    assert!(stats.mem_peak_bytes.unwrap_or(0) >= 16 << 20, "{stats:?}");
    let dirs = jail.dirs();
    jail.remove().expect("remove");
    assert_gone(&dirs);
}

#[test]
fn vm_v2_pids_max() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let mut cfg = v2_cfg(&mount);
    cfg.set_cgroup_pids_max(5);
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert!(has(&mount.join("cgroup.subtree_control"), "pids"));
    let mut child = Child::spawn(Action::Forks(8));
    let jail = cg.create_for(child.pid).expect("create_for");
    child.go();
    assert_eq!(
        child.wait().code,
        Some(4),
        "pids.max 5 = the child + 4 forks"
    );
    let stats = jail.stats();
    if let Some(p) = stats.pids_peak {
        assert_eq!(p, 5);
    } else {
        eprintln!(
            "SKIP {}: pids.peak part: this kernel has no pids.peak",
            std::thread::current().name().unwrap_or("unknown_test")
        );
    }
    let dirs = jail.dirs();
    jail.remove().expect("remove");
    assert_gone(&dirs);
}

#[test]
fn vm_v2_cpu_max_throttles() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let mut cfg = v2_cfg(&mount);
    cfg.set_cgroup_cpu_ms_per_sec(200);
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert!(has(&mount.join("cgroup.subtree_control"), "cpu"));
    let mut child = Child::spawn(Action::Spin(Duration::from_millis(1500)));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = mount.join(format!("NSJAIL.{}", child.pid));
    assert_eq!(read(&dir.join("cpu.max")).trim(), "200000 1000000");
    child.go();
    let exit = child.wait();
    assert_eq!(exit.code, Some(0));
    let stats = jail.stats();
    let used = stats.cpu_usage_us.expect("cpu.stat usage_usec");
    assert!(
        used > 0 && used < 700_000,
        "used {used} µs of a 1.5 s spin at 20%"
    );
    let throttled = parse::keyed_u64(&read(&dir.join("cpu.stat")), "nr_throttled");
    assert!(throttled.unwrap_or(0) > 0, "nr_throttled {throttled:?}");
    jail.remove().expect("remove");
    assert_gone(&[dir]);
}

#[test]
fn vm_v2_no_internal_process_rule_leaves_nothing() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let me = std::process::id().to_string();
    // a non-root parent with memory available, holding this test process
    if !has(&mount.join("cgroup.subtree_control"), "memory") {
        write(&mount.join("cgroup.subtree_control"), "+memory");
    }
    let parent = mount.join(unique("nip"));
    std::fs::create_dir(&parent).unwrap();
    write(&parent.join("cgroup.procs"), &me);
    let self_dir = parent.join(format!("NSJAIL_SELF.{me}"));
    let result = std::panic::catch_unwind(|| {
        let mut cfg = v2_cfg(&parent);
        cfg.set_cgroup_mem_max(64 << 20);
        let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg))
            .expect("setup with the rule");
        assert_eq!(cg.version(), Some(2));
        assert!(
            self_dir.is_dir(),
            "nsjail moved into {}",
            self_dir.display()
        );
        assert!(read(&self_dir.join("cgroup.procs")).contains(&me));
        assert!(has(&parent.join("cgroup.subtree_control"), "memory"));
        let mut child = Child::spawn(Action::Alloc(8 << 20));
        let jail = cg.create_for(child.pid).expect("create_for");
        child.go();
        assert_eq!(child.wait().code, Some(0));
        let dirs = jail.dirs();
        jail.remove().expect("remove");
        assert_gone(&dirs);
        cg.teardown();
        assert_gone(std::slice::from_ref(&self_dir));
        assert!(
            read(&parent.join("cgroup.procs")).contains(&me),
            "moved back"
        );
        assert!(
            !has(&parent.join("cgroup.subtree_control"), "memory"),
            "restored"
        );
    });
    // back to the root whatever happened, then remove the test parent
    write(&mount.join("cgroup.procs"), &me);
    let _ = std::fs::remove_dir(&self_dir);
    std::fs::remove_dir(&parent).expect("rmdir test parent");
    assert_gone(&[parent]);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn vm_v2_seed_limits_and_kill() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    // the seed config's cgroup part: 128 MiB, no swap, 1 pid, 1 CPU
    let mut cfg = v2_cfg(&mount);
    cfg.set_cgroup_mem_max(128 << 20);
    cfg.set_cgroup_mem_swap_max(0);
    cfg.set_cgroup_pids_max(1);
    cfg.set_cgroup_cpu_ms_per_sec(1000);
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert_eq!(cg.version(), Some(2));
    let mut child = Child::spawn(Action::Forks(2));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = mount.join(format!("NSJAIL.{}", child.pid));
    assert_eq!(read(&dir.join("cpu.max")).trim(), "1000000 1000000");
    child.go();
    assert_eq!(child.wait().code, Some(0), "pids.max 1: no fork succeeds");
    let mut sleeper = Child::spawn(Action::Sleep);
    let jail2 = cg.create_for(sleeper.pid).expect("create_for");
    jail2.kill_all();
    assert_eq!(sleeper.wait().signal, Some(libc::SIGKILL));
    let dirs: Vec<PathBuf> = jail.dirs().into_iter().chain(jail2.dirs()).collect();
    jail.remove().expect("remove");
    jail2.remove().expect("remove");
    assert_gone(&dirs);
    let left: Vec<String> = std::fs::read_dir(&mount)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("NSJAIL"))
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", mount.display());
}

/// The real `nsjail` binary in the guest, with `use_cgroupv2`: a memory
/// hog is OOM-killed (exit 137, report status oom), pids.max stops a fork,
/// and no `NSJAIL*` directory (nor NSJAIL_SELF) remains.
#[test]
fn vm_nsjail_binary_enforces_v2_limits() {
    let _g = serial();
    let mount = match vm() {
        Ok(m) => m,
        Err(why) => skip!("{why}"),
    };
    let bin = env!("CARGO_BIN_EXE_nsjail");
    if !Path::new(bin).exists() {
        panic!("{bin} is missing in the guest: vmtest/run.sh must copy it there");
    }
    let report = std::env::temp_dir().join(unique("vm-report"));
    let run = |limits: &[&str], cmd: &[&str]| -> (Option<i32>, serde_json::Value, String) {
        let mut c = std::process::Command::new(bin);
        c.args([
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "--use_cgroupv2",
            "--cgroupv2_mount",
        ])
        .arg(&mount)
        .arg("--run_report")
        .arg(&report)
        .args(limits)
        .arg("--")
        .args(cmd)
        .stdin(std::process::Stdio::null());
        let out = c.output().expect("run nsjail");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let _ = std::fs::remove_file(&report);
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), v, err)
    };
    // busybox dd allocates (and zero-fills) one block of bs bytes.
    let (code, rep, err) = run(
        &["--cgroup_mem_max", "33554432", "--cgroup_mem_swap_max", "0"],
        &[
            "/bin/dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=128M",
            "count=1",
        ],
    );
    assert_eq!(code, Some(137), "{err}");
    assert_eq!(rep["status"], "oom", "{rep} {err}");
    let (code, rep, err) = run(
        &["--cgroup_mem_max", "33554432", "--cgroup_mem_swap_max", "0"],
        &[
            "/bin/dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4M",
            "count=1",
        ],
    );
    assert_eq!(code, Some(0), "{rep} {err}");
    // Issue 14 item 6: children killed at the time limit count, from
    // cpu.stat (no cpu limit needed), and the report says so.
    let (_, rep, err) = run(
        &["--cgroup_pids_max", "20", "-t", "2"],
        &[
            "/bin/sh",
            "-c",
            "for i in 1 2 3; do (while :; do :; done) & done; sleep 100",
        ],
    );
    assert_eq!(rep["status"], "time_limit", "{rep} {err}");
    assert_eq!(rep["cpu_source"], "cgroup", "{rep} {err}");
    assert!(rep["user_ms"].as_u64().unwrap_or(0) >= 1_000, "{rep}");
    let fork = ["/bin/sh", "-c", "/bin/true && /bin/true"];
    let (code, _, err) = run(&["--cgroup_pids_max", "2"], &fork);
    assert_eq!(code, Some(0), "pids.max 2 allows one child: {err}");
    let (code, _, err) = run(&["--cgroup_pids_max", "1"], &fork);
    assert_ne!(code, Some(0), "pids.max 1 must stop the fork: {err}");
    let left: Vec<String> = std::fs::read_dir(&mount)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("NSJAIL"))
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", mount.display());
}

/// Item 1 of issue 14, v2: a jail never adopts an existing `NSJAIL.<pid>`;
/// the leftovers of a dead nsjail (mode 0701, unlocked, empty) are removed by
/// the next set-up, everything else is left alone. Runs on any cgroup2 mount
/// (no controller needed); the VM tier runs it too.
#[test]
fn v2_leftovers_of_a_dead_nsjail_are_swept_and_never_adopted() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _g = serial();
    let (mount, own) = match v2() {
        Ok(x) => x,
        Err(why) => skip!("{why}"),
    };
    let root_subtree = read(&mount.join("cgroup.subtree_control"));
    let parent = own.join(unique("v2stale"));
    std::fs::create_dir(&parent).expect("mkdir test parent");
    let mkdir_marked = |name: &str, mode: u32| {
        let d = parent.join(name);
        std::fs::create_dir(&d).expect("mkdir leftover");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).expect("chmod");
        d
    };
    let orphan = mkdir_marked("NSJAIL.2147483001", 0o701);
    let foreign = mkdir_marked("NSJAIL.2147483002", 0o700);
    let held = mkdir_marked("NSJAIL.2147483003", 0o701);
    // A live owner: we hold its lock, as a running nsjail does.
    let held_fd = std::fs::File::open(&held).expect("open held");
    assert!(nsjail::sys::flock_exclusive(std::os::fd::AsFd::as_fd(&held_fd), false).unwrap());

    let cg = Cgroups::v2_forced(&parent, Request::default(), Arc::new(RealFs)).expect("v2");
    assert!(
        !orphan.exists(),
        "the orphan of a dead nsjail was not swept"
    );
    assert!(
        foreign.exists(),
        "a directory not marked as ours was removed"
    );
    assert!(held.exists(), "a directory a live nsjail holds was removed");

    // A stale NSJAIL.<pid> of ours for the very pid of the next jail is made
    // afresh (a new directory), never adopted.
    let mut child = Child::spawn(Action::Sleep);
    let stale = mkdir_marked(&format!("NSJAIL.{}", child.pid), 0o701);
    let old_ino = std::fs::metadata(&stale).unwrap().ino();
    let jail = cg
        .create_for(child.pid)
        .expect("create_for over a stale dir");
    assert_ne!(std::fs::metadata(&stale).unwrap().ino(), old_ino, "adopted");
    child.go();
    jail.kill_all();
    child.wait();
    jail.remove().expect("remove");

    // Not ours: refused with one line naming it.
    let mut child = Child::spawn(Action::Sleep);
    let theirs = mkdir_marked(&format!("NSJAIL.{}", child.pid), 0o700);
    let e = cg.create_for(child.pid).unwrap_err().to_string();
    assert!(
        e.contains(&theirs.display().to_string()) && e.contains("never adopts"),
        "{e}"
    );
    child.go();
    // SAFETY: kill(2) on our own forked child's pid.
    unsafe { libc::kill(child.pid, libc::SIGKILL) };
    child.wait();

    drop(cg);
    drop(held_fd);
    for d in [&foreign, &held, &theirs] {
        std::fs::remove_dir(d).expect("rmdir leftover");
    }
    std::fs::remove_dir(&parent).expect("rmdir test parent");
    assert_gone(&[orphan, foreign, held, theirs, stale, parent]);
    assert_eq!(read(&mount.join("cgroup.subtree_control")), root_subtree);
}
