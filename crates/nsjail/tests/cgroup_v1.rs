//! cgroup v1 on a real host, as root: memory (OOM kill), pids.max, CPU quota,
//! parent creation and removal. The memory parent is created under our own
//! memory cgroup (from /proc/self/cgroup); pids/cpu use uniquely named test
//! directories. Every directory is checked to be gone afterwards.

#[macro_use]
mod cgroup_support;

use cgroup_support::{assert_gone, is_root, own_v1, unique, v1_hierarchy, Action, Child};
use nsjail::cgroup::Cgroups;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MEM: &str = "/sys/fs/cgroup/memory";
const PIDS: &str = "/sys/fs/cgroup/pids";
const CPU: &str = "/sys/fs/cgroup/cpu";

fn need(ctl: &str, mount: &str) -> Result<(), String> {
    if !is_root() {
        return Err("needs root".into());
    }
    if !v1_hierarchy(mount, ctl) {
        return Err(format!(
            "{mount} is not a cgroup v1 {ctl} hierarchy on this host"
        ));
    }
    Ok(())
}

/// Memory parent under our own memory cgroup: `<own>/<unique>` (missing, so
/// nsjail creates it).
fn mem_parent() -> Option<PathBuf> {
    Some(own_v1("memory")?.join(unique("mem")))
}

#[test]
fn v1_memory_oom_kill_is_reported_and_cleaned_up() {
    if let Err(why) = need("memory", MEM) {
        skip!("{why}");
    }
    let Some(parent) = mem_parent() else {
        skip!("no memory line in /proc/self/cgroup")
    };
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_cgroup_mem_max(32 << 20);
    cfg.set_cgroup_mem_swap_max(0);
    cfg.set_cgroup_mem_parent(parent.to_string_lossy().into_owned());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert_eq!(cg.version(), Some(1));
    let mut child = Child::spawn(Action::Alloc(256 << 20));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = Path::new(MEM)
        .join(&parent)
        .join(format!("NSJAIL.{}", child.pid));
    assert_eq!(jail.dirs(), vec![dir.clone()]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(
        read("memory.limit_in_bytes").trim(),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read("memory.memsw.limit_in_bytes").trim(),
        (32u64 << 20).to_string()
    );
    assert!(read("memory.oom_control").contains("oom_kill_disable 0"));
    assert_eq!(
        child.cgroup(Some("memory")).as_deref(),
        Some(format!("/{}/NSJAIL.{}", parent.display(), child.pid).as_str())
    );
    child.go();
    let exit = child.wait();
    assert_eq!(
        exit.signal,
        Some(libc::SIGKILL),
        "256 MiB under 32 MiB: {exit:?}"
    );
    let stats = jail.stats();
    assert!(stats.oom_killed, "{stats:?}");
    let peak = stats.mem_peak_bytes.expect("max_usage_in_bytes");
    assert!(peak > (16 << 20) && peak <= (32 << 20), "peak {peak}");
    jail.remove().expect("remove");
    assert_gone(&[dir, Path::new(MEM).join(&parent)]);
}

#[test]
fn v1_memory_under_the_limit_runs_and_existing_parent_is_kept() {
    if let Err(why) = need("memory", MEM) {
        skip!("{why}");
    }
    let Some(own) = own_v1("memory") else {
        skip!("no memory line in /proc/self/cgroup")
    };
    // our own cgroup exists: the jail goes directly into it and it stays
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_cgroup_mem_max(64 << 20);
    cfg.set_cgroup_mem_parent(own.to_string_lossy().into_owned());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    let mut child = Child::spawn(Action::Alloc(16 << 20));
    let jail = cg.create_for(child.pid).expect("create_for");
    child.go();
    let exit = child.wait();
    assert_eq!(exit.code, Some(0), "{exit:?}");
    let stats = jail.stats();
    assert!(!stats.oom_killed);
    assert!(stats.mem_peak_bytes.unwrap() >= 16 << 20, "{stats:?}");
    let dirs = jail.dirs();
    jail.remove().expect("remove");
    assert_gone(&dirs);
    assert!(
        Path::new(MEM).join(&own).is_dir(),
        "our own cgroup must stay"
    );
}

#[test]
fn v1_pids_max_limits_forks() {
    if let Err(why) = need("pids", PIDS) {
        skip!("{why}");
    }
    let parent = unique("pids");
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_cgroup_pids_max(5);
    cfg.set_cgroup_pids_parent(parent.clone());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    let mut child = Child::spawn(Action::Forks(8));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = Path::new(PIDS)
        .join(&parent)
        .join(format!("NSJAIL.{}", child.pid));
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "5"
    );
    child.go();
    let exit = child.wait();
    assert_eq!(
        exit.code,
        Some(4),
        "pids.max 5 = the child + 4 forks: {exit:?}"
    );
    let stats = jail.stats();
    if let Some(peak) = stats.pids_peak {
        assert_eq!(peak, 5, "{stats:?}");
    } else {
        eprintln!(
            "SKIP {}: pids.peak part: this kernel has no v1 pids.peak",
            std::thread::current().name().unwrap_or("unknown_test")
        );
    }
    jail.remove().expect("remove");
    assert_gone(&[dir, Path::new(PIDS).join(&parent)]);
}

#[test]
fn v1_cpu_quota_throttles() {
    if let Err(why) = need("cpu", CPU) {
        skip!("{why}");
    }
    let parent = unique("cpu");
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_cgroup_cpu_ms_per_sec(200);
    cfg.set_cgroup_cpu_parent(parent.clone());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    let mut child = Child::spawn(Action::Spin(Duration::from_millis(1500)));
    let jail = cg.create_for(child.pid).expect("create_for");
    let dir = Path::new(CPU)
        .join(&parent)
        .join(format!("NSJAIL.{}", child.pid));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("cpu.cfs_quota_us").trim(), "200000");
    assert_eq!(read("cpu.cfs_period_us").trim(), "1000000");
    child.go();
    let exit = child.wait();
    assert_eq!(exit.code, Some(0));
    // 20% of one CPU over 1.5 s is 0.3 s; unthrottled it would be ~1.5 s.
    assert!(
        exit.cpu < Duration::from_millis(700),
        "cpu {:?} over wall {:?}: not throttled",
        exit.cpu,
        exit.wall
    );
    let throttled = nsjail::cgroup::parse::keyed_u64(&read("cpu.stat"), "nr_throttled");
    assert!(
        throttled.unwrap_or(0) > 0,
        "cpu.stat nr_throttled {throttled:?}"
    );
    jail.remove().expect("remove");
    assert_gone(&[dir, Path::new(CPU).join(&parent)]);
}

#[test]
fn v1_all_controllers_for_one_jail_and_kill_all() {
    for (c, m) in [("memory", MEM), ("pids", PIDS), ("cpu", CPU)] {
        if let Err(why) = need(c, m) {
            skip!("{why}");
        }
    }
    let Some(mparent) = mem_parent() else {
        skip!("no memory line in /proc/self/cgroup")
    };
    let parent = unique("all");
    let mut cfg = nsjail_config::NsJailConfig::new();
    // the seed config's limits, v2 asked for but unavailable here
    cfg.set_use_cgroupv2(true);
    cfg.set_cgroup_mem_max(128 << 20);
    cfg.set_cgroup_mem_swap_max(0);
    cfg.set_cgroup_pids_max(1);
    cfg.set_cgroup_cpu_ms_per_sec(1000);
    cfg.set_cgroup_mem_parent(mparent.to_string_lossy().into_owned());
    cfg.set_cgroup_pids_parent(parent.clone());
    cfg.set_cgroup_cpu_parent(parent.clone());
    let cg = Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup");
    assert_eq!(cg.version(), Some(1));
    let mut child = Child::spawn(Action::Sleep);
    let jail = cg.create_for(child.pid).expect("create_for");
    assert_eq!(jail.dirs().len(), 3);
    for ctl in ["memory", "pids", "cpu"] {
        let p = child.cgroup(Some(ctl)).unwrap();
        assert!(p.ends_with(&format!("/NSJAIL.{}", child.pid)), "{ctl}: {p}");
    }
    jail.kill_all();
    let exit = child.wait();
    assert_eq!(exit.signal, Some(libc::SIGKILL));
    let dirs = jail.dirs();
    jail.remove().expect("remove");
    assert_gone(&dirs);
    assert_gone(&[
        Path::new(MEM).join(&mparent),
        Path::new(PIDS).join(&parent),
        Path::new(CPU).join(&parent),
    ]);
}

#[test]
fn v1_concurrent_jails_share_a_created_parent() {
    if let Err(why) = need("pids", PIDS) {
        skip!("{why}");
    }
    let parent = unique("shared");
    let mut cfg = nsjail_config::NsJailConfig::new();
    cfg.set_cgroup_pids_max(10);
    cfg.set_cgroup_pids_parent(parent.clone());
    let cg = std::sync::Arc::new(
        Cgroups::setup(&nsjail::cgroup::Request::from_config(&cfg)).expect("setup"),
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let cg = cg.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let mut child = Child::spawn(Action::Alloc(4096));
                    let jail = cg.create_for(child.pid).expect("create_for");
                    child.go();
                    assert_eq!(child.wait().code, Some(0));
                    jail.remove().expect("remove");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_gone(&[Path::new(PIDS).join(&parent)]);
}
