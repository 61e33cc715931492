//! Decision and planning tests on the in-memory [`FakeFs`].

use super::fs::fake::{FakeFs, Op};
use super::*;

const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const NET_CLS_LINE: &str = "42 31 0:39 / /sys/fs/cgroup/net_cls rw - cgroup cgroup rw,net_cls\n";
const TMPFS: i64 = 0x0102_1994;

/// A hybrid host like ours: v1 memory/pids/cpu, a v2 with only hugetlb.
fn hybrid() -> FakeFs {
    let f = FakeFs::new(1000);
    f.file("/proc/self/mountinfo", V1_MOUNTINFO)
        .file(
            "/proc/self/cgroup",
            "4:memory:/\n8:pids:/\n1:cpu,cpuacct:/\n0::/\n",
        )
        .dir("/sys/fs/cgroup/memory")
        .dir("/sys/fs/cgroup/pids")
        .dir("/sys/fs/cgroup/cpu")
        .file("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
        .file("/sys/fs/cgroup/unified/cgroup.subtree_control", "\n")
        .file("/sys/fs/cgroup/unified/cgroup.procs", "1\n1000\n")
        .fstype("/sys/fs/cgroup", TMPFS)
        .fstype("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC);
    f
}

/// A pure v2 host with all controllers at `/sys/fs/cgroup`.
fn pure_v2(procs: &str) -> FakeFs {
    let f = FakeFs::new(1000);
    f.file(
        "/proc/self/mountinfo",
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    )
    .file("/proc/self/cgroup", "0::/\n")
    .file(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io memory pids\n",
    )
    .file("/sys/fs/cgroup/cgroup.subtree_control", "\n")
    .file("/sys/fs/cgroup/cgroup.procs", procs)
    .fstype("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC);
    f
}

fn seed_request() -> Request {
    Request {
        mem_max: 134217728,
        swap_max: 0,
        pids_max: 1,
        cpu_ms_per_sec: 1000,
        use_v2: true,
        ..Request::default()
    }
}

fn setup(f: &Arc<FakeFs>, req: Request) -> Result<Cgroups, CgroupError> {
    Cgroups::setup_with(req, f.clone() as Arc<dyn CgroupFs>)
}

fn w(p: &str, v: &str) -> (String, String) {
    (p.to_string(), v.to_string())
}

#[test]
fn inactive_config_creates_nothing() {
    let f = Arc::new(hybrid());
    let cg = setup(&f, Request::default()).unwrap();
    assert!(!cg.is_active());
    let j = cg.create_for(5).unwrap();
    assert_eq!(j.stats(), CgroupStats::default());
    j.kill_all();
    j.remove().unwrap();
    assert!(f.ops().is_empty(), "{:?}", f.ops());
}

#[test]
fn seed_on_hybrid_host_falls_back_to_v1_without_touching_v2() {
    let f = Arc::new(hybrid());
    // cgroupv2_mount default /sys/fs/cgroup is a tmpfs here
    let cg = setup(&f, seed_request()).unwrap();
    assert_eq!(cg.version(), Some(1));
    // and pointing it at the controller-less unified hierarchy
    let req = Request {
        v2_mount: "/sys/fs/cgroup/unified".into(),
        ..seed_request()
    };
    let cg2 = setup(&f, req).unwrap();
    assert_eq!(cg2.version(), Some(1));
    assert!(
        f.ops().is_empty(),
        "setup must not write anything: {:?}",
        f.ops()
    );
}

#[test]
fn v1_jail_dirs_limits_order_and_cleanup() {
    let f = Arc::new(hybrid());
    let cg = setup(&f, seed_request()).unwrap();
    let j = cg.create_for(42).unwrap();
    let m = "/sys/fs/cgroup/memory/NSJAIL/NSJAIL.42";
    let p = "/sys/fs/cgroup/pids/NSJAIL/NSJAIL.42";
    let c = "/sys/fs/cgroup/cpu/NSJAIL/NSJAIL.42";
    assert_eq!(
        f.writes(),
        vec![
            w(&format!("{m}/memory.oom_control"), "0"),
            w(&format!("{m}/memory.limit_in_bytes"), "134217728"),
            w(&format!("{m}/memory.memsw.limit_in_bytes"), "134217728"),
            w(&format!("{p}/pids.max"), "1"),
            w(&format!("{c}/cpu.cfs_period_us"), "1000000"),
            w(&format!("{c}/cpu.cfs_quota_us"), "1000000"),
            w(&format!("{m}/tasks"), "42"),
            w(&format!("{p}/tasks"), "42"),
            w(&format!("{c}/tasks"), "42"),
        ]
    );
    // the missing parents were created by us
    for d in [m, p, c] {
        assert!(f.has_dir(d));
    }
    assert_eq!(j.dirs().len(), 3);
    j.remove().unwrap();
    for d in ["memory", "pids", "cpu"] {
        assert!(
            !f.has_dir(&format!("/sys/fs/cgroup/{d}/NSJAIL")),
            "{d} parent left"
        );
        assert!(
            f.has_dir(&format!("/sys/fs/cgroup/{d}")),
            "{d} mount removed!"
        );
    }
}

#[test]
fn v1_existing_parent_is_kept() {
    let f = Arc::new(hybrid());
    f.dir("/sys/fs/cgroup/pids/mine/sub");
    let req = Request {
        pids_max: 3,
        pids: ("/sys/fs/cgroup/pids".into(), "mine/sub/new".into()),
        ..Request::default()
    };
    let cg = setup(&f, req).unwrap();
    let j = cg.create_for(7).unwrap();
    assert!(f.has_dir("/sys/fs/cgroup/pids/mine/sub/new/NSJAIL.7"));
    drop(j); // Drop removes as well
    assert!(!f.has_dir("/sys/fs/cgroup/pids/mine/sub/new"));
    assert!(
        f.has_dir("/sys/fs/cgroup/pids/mine/sub"),
        "pre-existing parent removed"
    );
}

#[test]
fn v1_shared_created_parent_removed_by_the_last_jail() {
    let f = Arc::new(hybrid());
    let req = Request {
        pids_max: 3,
        ..Request::default()
    };
    let cg = setup(&f, req).unwrap();
    let a = cg.create_for(1).unwrap();
    let b = cg.create_for(2).unwrap();
    a.remove().unwrap();
    assert!(
        f.has_dir("/sys/fs/cgroup/pids/NSJAIL"),
        "removed while jail 2 uses it"
    );
    assert!(f.has_dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.2"));
    b.remove().unwrap();
    assert!(
        !f.has_dir("/sys/fs/cgroup/pids/NSJAIL"),
        "last jail must remove our parent"
    );
    // and a later jail recreates it
    let c = cg.create_for(3).unwrap();
    assert!(f.has_dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.3"));
    c.remove().unwrap();
    assert!(!f.has_dir("/sys/fs/cgroup/pids/NSJAIL"));
}

#[test]
fn v1_parent_busy_from_someone_else_is_left() {
    let f = Arc::new(hybrid());
    let cg = setup(
        &f,
        Request {
            pids_max: 3,
            ..Request::default()
        },
    )
    .unwrap();
    let j = cg.create_for(1).unwrap();
    // another nsjail put its jail into the parent we created
    f.dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.999");
    j.remove().unwrap();
    assert!(f.has_dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.999"));
}

#[test]
fn v1_write_failure_names_path_value_errno_and_cleans_up() {
    let mut f = hybrid();
    f.write_hook = Some(Box::new(|p, _, _| {
        p.ends_with("cpu.cfs_quota_us").then_some(libc::EINVAL)
    }));
    let f = Arc::new(f);
    let cg = setup(&f, seed_request()).unwrap();
    let e = cg.create_for(9).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/sys/fs/cgroup/cpu/NSJAIL/NSJAIL.9/cpu.cfs_quota_us"),
        "{msg}"
    );
    assert!(msg.contains("'1000000'"), "{msg}");
    assert!(msg.contains("os error 22"), "{msg}");
    assert!(msg.contains("cgroup_cpu_ms_per_sec=1000"), "{msg}");
    // the pid was never moved anywhere, and nothing is left
    assert!(!f.writes().iter().any(|(p, _)| p.ends_with("tasks")));
    for d in ["memory", "pids", "cpu"] {
        assert!(
            !f.has_dir(&format!("/sys/fs/cgroup/{d}/NSJAIL")),
            "{d} left"
        );
    }
}

#[test]
fn v1_failed_move_puts_the_pid_back() {
    let mut f = hybrid();
    f.write_hook = Some(Box::new(|p, _, _| {
        (p.starts_with("/sys/fs/cgroup/cpu/NSJAIL") && p.ends_with("tasks")).then_some(libc::ESRCH)
    }));
    let f = Arc::new(f);
    let cg = setup(&f, seed_request()).unwrap();
    assert!(cg.create_for(9).is_err());
    let writes = f.writes();
    assert!(
        writes.contains(&w("/sys/fs/cgroup/memory/tasks", "9")),
        "{writes:?}"
    );
    assert!(
        writes.contains(&w("/sys/fs/cgroup/pids/tasks", "9")),
        "{writes:?}"
    );
}

#[test]
fn v1_net_cls_needs_its_hierarchy() {
    let f = Arc::new(hybrid());
    let req = Request {
        net_cls_classid: 0x10001,
        use_v2: true,
        v2_mount: "/sys/fs/cgroup/unified".into(),
        ..Request::default()
    };
    let e = setup(&f, req.clone()).unwrap_err().to_string();
    assert!(e.contains("cgroup_net_cls_classid=65537"), "{e}");
    assert!(e.contains("no cgroup v2 equivalent"), "{e}");
    assert!(e.contains("/sys/fs/cgroup/net_cls"), "{e}");
    // with the hierarchy mounted, v1 serves it, written in hex
    let mut mi = V1_MOUNTINFO.to_string();
    mi.push_str(NET_CLS_LINE);
    f.file("/proc/self/mountinfo", &mi)
        .dir("/sys/fs/cgroup/net_cls");
    let cg = setup(&f, req).unwrap();
    assert_eq!(cg.version(), Some(1));
    let j = cg.create_for(3).unwrap();
    assert!(f.writes().contains(&w(
        "/sys/fs/cgroup/net_cls/NSJAIL/NSJAIL.3/net_cls.classid",
        "0x10001"
    )));
    j.remove().unwrap();
}

#[test]
fn neither_version_is_one_error_naming_the_limit() {
    let f = Arc::new(FakeFs::new(1));
    f.file(
        "/proc/self/mountinfo",
        "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
    )
    .file("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
    .file("/sys/fs/cgroup/unified/cgroup.subtree_control", "")
    .fstype("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC)
    .dir("/sys/fs/cgroup/memory");
    let req = Request {
        mem_max: 1 << 25,
        use_v2: true,
        v2_mount: "/sys/fs/cgroup/unified".into(),
        ..Request::default()
    };
    let e = setup(&f, req).unwrap_err();
    assert!(matches!(e, CgroupError::Unavailable { .. }));
    let msg = e.to_string();
    assert!(msg.contains("cgroup_mem_max=33554432"), "{msg}");
    assert!(msg.contains("offers [hugetlb]"), "{msg}");
    assert!(msg.contains("memory controller"), "{msg}");
    assert!(
        msg.contains("not a cgroup v1 hierarchy with the memory controller"),
        "{msg}"
    );
    assert!(f.ops().is_empty());
}

#[test]
fn default_v1_on_pure_v2_host_switches_to_v2() {
    let f = Arc::new(pure_v2("1000\n"));
    let req = Request {
        pids_max: 5,
        ..Request::default()
    };
    let cg = setup(&f, req).unwrap();
    assert_eq!(cg.version(), Some(2));
}

#[test]
fn detect_overrides_use_cgroupv2_both_ways() {
    let f = Arc::new(hybrid());
    let mut req = Request {
        pids_max: 5,
        use_v2: true,
        detect_v2: true,
        ..Request::default()
    };
    assert_eq!(setup(&f, req.clone()).unwrap().version(), Some(1));
    let g = Arc::new(pure_v2("\n"));
    req.use_v2 = false;
    assert_eq!(setup(&g, req).unwrap().version(), Some(2));
}

#[test]
fn v2_enables_controllers_then_limits_then_moves_pid() {
    // procs of the root are exempt from the no-internal-process rule
    let f = Arc::new(pure_v2("1\n1000\n"));
    let cg = setup(&f, seed_request()).unwrap();
    assert_eq!(cg.version(), Some(2));
    let j = cg.create_for(77).unwrap();
    let d = "/sys/fs/cgroup/NSJAIL.77";
    assert_eq!(
        f.writes(),
        vec![
            w(
                "/sys/fs/cgroup/cgroup.subtree_control",
                "+memory +pids +cpu"
            ),
            w(&format!("{d}/memory.max"), "134217728"),
            w(&format!("{d}/memory.swap.max"), "0"),
            w(&format!("{d}/pids.max"), "1"),
            w(&format!("{d}/cpu.max"), "1000000 1000000"),
            w(&format!("{d}/cgroup.procs"), "77"),
        ]
    );
    j.kill_all();
    assert!(f.writes().contains(&w(&format!("{d}/cgroup.kill"), "1")));
    j.remove().unwrap();
    assert!(!f.has_dir(d));
    drop(cg);
    // nothing of ours to undo: subtree_control is left as nsjail leaves it
    assert_eq!(f.writes().len(), 7);
}

#[test]
fn v2_only_missing_controllers_are_enabled() {
    let f = Arc::new(pure_v2("\n"));
    f.file("/sys/fs/cgroup/cgroup.subtree_control", "memory cpu\n");
    let _cg = setup(&f, seed_request()).unwrap();
    assert_eq!(
        f.writes(),
        vec![w("/sys/fs/cgroup/cgroup.subtree_control", "+pids")]
    );
}

/// A non-root v2 parent: enabling controllers fails with EBUSY while it has
/// processes (the fake checks its cgroup.procs file).
fn busy_rule(f: &mut FakeFs) {
    f.write_hook = Some(Box::new(|p, v, st| {
        if p.ends_with("cgroup.subtree_control") && v.contains('+') {
            let procs = st
                .files
                .get(&p.with_file_name("cgroup.procs"))
                .cloned()
                .unwrap_or_default();
            if !procs.trim().is_empty() {
                return Some(libc::EBUSY);
            }
        }
        None
    }));
}

#[test]
fn v2_no_internal_process_rule_moves_self_and_teardown_undoes_it() {
    let mut f = pure_v2("1000\n");
    busy_rule(&mut f);
    let f = Arc::new(f);
    let req = Request {
        pids_max: 4,
        ..seed_request()
    };
    // the fake does not move pids between cgroups: the shim emulates the kernel
    let cg = setup_with_move_emulation(&f, req);
    assert_eq!(cg.version(), Some(2));
    assert!(f.has_dir("/sys/fs/cgroup/NSJAIL_SELF.1000"));
    let j = cg.create_for(55).unwrap();
    j.remove().unwrap();
    cg.teardown();
    assert!(
        !f.has_dir("/sys/fs/cgroup/NSJAIL_SELF.1000"),
        "NSJAIL_SELF left behind"
    );
    let writes = f.writes();
    let tail: Vec<_> = writes[writes.len() - 2..].to_vec();
    assert_eq!(
        tail,
        vec![
            w(
                "/sys/fs/cgroup/cgroup.subtree_control",
                "-memory -pids -cpu"
            ),
            w("/sys/fs/cgroup/cgroup.procs", "1000"),
        ]
    );
    assert!(writes.contains(&w("/sys/fs/cgroup/NSJAIL_SELF.1000/cgroup.procs", "1000")));
}

/// Runs setup; the fake's parent `cgroup.procs` is emptied once nsjail
/// writes itself into a child (as the kernel would).
fn setup_with_move_emulation(f: &Arc<FakeFs>, req: Request) -> Cgroups {
    // Wrap: a tiny shim FS that forwards to the fake and moves pids.
    #[derive(Debug)]
    struct Mover(Arc<FakeFs>);
    impl CgroupFs for Mover {
        fn read(&self, p: &Path) -> io::Result<String> {
            self.0.read(p)
        }
        fn write(&self, p: &Path, v: &str) -> io::Result<()> {
            self.0.write(p, v)?;
            if p.ends_with("cgroup.procs") && p.parent() != Some(Path::new("/sys/fs/cgroup")) {
                self.0
                    .state
                    .lock()
                    .unwrap()
                    .files
                    .insert("/sys/fs/cgroup/cgroup.procs".into(), String::new());
            }
            Ok(())
        }
        fn mkdir(&self, p: &Path) -> io::Result<()> {
            self.0.mkdir(p)
        }
        fn rmdir(&self, p: &Path) -> io::Result<()> {
            self.0.rmdir(p)
        }
        fn subdirs(&self, p: &Path) -> io::Result<Vec<String>> {
            self.0.subdirs(p)
        }
        fn fs_type(&self, p: &Path) -> io::Result<i64> {
            self.0.fs_type(p)
        }
        fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
            self.0.canonicalize(p)
        }
        fn kill(&self, pid: i32) -> io::Result<()> {
            self.0.kill(pid)
        }
        fn getpid(&self) -> i32 {
            self.0.getpid()
        }
        fn pause(&self) {}
    }
    Cgroups::setup_with(req, Arc::new(Mover(f.clone()))).unwrap()
}

#[test]
fn v2_teardown_leaves_self_dir_when_siblings_exist() {
    let mut f = pure_v2("1000\n");
    busy_rule(&mut f);
    let f = Arc::new(f);
    let cg = setup_with_move_emulation(&f, seed_request());
    f.dir("/sys/fs/cgroup/someone-elses");
    let n = f.writes().len();
    cg.teardown();
    assert_eq!(
        f.writes().len(),
        n,
        "must not disable controllers others may use"
    );
    assert!(f.has_dir("/sys/fs/cgroup/NSJAIL_SELF.1000"));
}

#[test]
fn v2_busy_with_other_processes_falls_back_and_leaves_nothing() {
    let mut f = pure_v2("1000\n4242\n");
    busy_rule(&mut f);
    f.file("/proc/self/mountinfo", V1_MOUNTINFO)
        .dir("/sys/fs/cgroup/pids");
    // v2 at a non-root cgroup2 mount, v1 pids available
    f.fstype("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC);
    let f = Arc::new(f);
    let req = Request {
        pids_max: 2,
        use_v2: true,
        ..Request::default()
    };
    let cg = setup(&f, req).unwrap();
    assert_eq!(cg.version(), Some(1));
    assert!(f
        .subdirs(Path::new("/sys/fs/cgroup"))
        .unwrap()
        .iter()
        .all(|d| !d.starts_with("NSJAIL_SELF")));
    // and without v1 it is one error naming the other processes
    let mut g = pure_v2("1000\n4242\n");
    busy_rule(&mut g);
    let g = Arc::new(g);
    let e = setup(
        &g,
        Request {
            pids_max: 2,
            use_v2: true,
            ..Request::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cgroup_pids_max=2"), "{e}");
    assert!(e.contains("[4242]"), "{e}");
    assert!(e.contains("os error 16"), "{e}");
}

#[test]
fn stats_v2_from_control_files() {
    let f = Arc::new(pure_v2("\n"));
    let cg = setup(&f, seed_request()).unwrap();
    let j = cg.create_for(8).unwrap();
    let d = "/sys/fs/cgroup/NSJAIL.8";
    f.file(
        &format!("{d}/memory.events"),
        "low 0\nhigh 0\nmax 35\noom 1\noom_kill 1\n",
    )
    .file(&format!("{d}/memory.peak"), "67108864\n")
    .file(
        &format!("{d}/cpu.stat"),
        "usage_usec 1234\nuser_usec 1000\n",
    )
    .file(&format!("{d}/pids.peak"), "3\n");
    assert_eq!(
        j.stats(),
        CgroupStats {
            oom_killed: true,
            oom_kills: Some(1),
            mem_peak_bytes: Some(67108864),
            cpu_usage_us: Some(1234),
            pids_peak: Some(3),
            cpu_user_us: Some(1000),
            cpu_sys_us: None,
        }
    );
    f.file(&format!("{d}/memory.events"), "oom 0\noom_kill 0\n");
    assert!(!j.stats().oom_killed);
}

#[test]
fn stats_v1_from_control_files() {
    let f = Arc::new(hybrid());
    let cg = setup(&f, seed_request()).unwrap();
    let j = cg.create_for(8).unwrap();
    f.file(
        "/sys/fs/cgroup/memory/NSJAIL/NSJAIL.8/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    )
    .file(
        "/sys/fs/cgroup/memory/NSJAIL/NSJAIL.8/memory.max_usage_in_bytes",
        "33554432\n",
    )
    .file(
        "/sys/fs/cgroup/cpu/NSJAIL/NSJAIL.8/cpuacct.usage",
        "2500000\n",
    )
    .file(
        "/sys/fs/cgroup/cpu/NSJAIL/NSJAIL.8/cpuacct.stat",
        "user 250\nsystem 30\n",
    );
    let s = j.stats();
    assert_eq!(
        (s.cpu_user_us, s.cpu_sys_us),
        (Some(2_500_000), Some(300_000))
    );
    assert!(s.oom_killed);
    assert_eq!(s.mem_peak_bytes, Some(33554432));
    assert_eq!(s.cpu_usage_us, Some(2500));
    assert_eq!(s.pids_peak, None, "no pids.peak file: unknown, not 0");
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"oom_killed\":true"), "{json}");
}

#[test]
fn kill_all_v1_kills_each_member() {
    let f = Arc::new(hybrid());
    let cg = setup(
        &f,
        Request {
            pids_max: 9,
            ..Request::default()
        },
    )
    .unwrap();
    let j = cg.create_for(8).unwrap();
    f.file(
        "/sys/fs/cgroup/pids/NSJAIL/NSJAIL.8/cgroup.procs",
        "8\n11\n",
    );
    j.kill_all();
    let kills: Vec<i32> = f
        .ops()
        .into_iter()
        .filter_map(|o| if let Op::Kill(p) = o { Some(p) } else { None })
        .collect();
    assert!(kills.contains(&8) && kills.contains(&11), "{kills:?}");
}

#[test]
fn remove_reports_a_dir_that_stays_busy() {
    let f = Arc::new(hybrid());
    let cg = setup(
        &f,
        Request {
            pids_max: 9,
            ..Request::default()
        },
    )
    .unwrap();
    let j = cg.create_for(8).unwrap();
    let d = PathBuf::from("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.8");
    f.state
        .lock()
        .unwrap()
        .rmdir_err
        .insert(d.clone(), libc::EBUSY);
    let e = j.remove().unwrap_err().to_string();
    assert!(e.contains("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.8"), "{e}");
    assert!(e.contains("os error 16"), "{e}");
    assert!(
        f.has_dir("/sys/fs/cgroup/pids/NSJAIL"),
        "parent of a busy dir cannot go"
    );
}

#[test]
fn missing_swap_accounting_is_explained() {
    let mut f = hybrid();
    f.write_hook = Some(Box::new(|p, _, _| {
        p.ends_with("memory.memsw.limit_in_bytes")
            .then_some(libc::ENOENT)
    }));
    let f = Arc::new(f);
    let cg = setup(&f, seed_request()).unwrap();
    let e = cg.create_for(4).unwrap_err().to_string();
    assert!(e.contains("memory.memsw.limit_in_bytes"), "{e}");
    assert!(e.contains("swap accounting"), "{e}");
    assert!(e.contains("cgroup_mem_swap_max=0"), "{e}");
    assert!(!f.has_dir("/sys/fs/cgroup/memory/NSJAIL"));
}

#[test]
fn v1_parent_removed_by_another_nsjail_meanwhile_is_recreated() {
    let f = Arc::new(hybrid());
    let cg = setup(
        &f,
        Request {
            pids_max: 2,
            ..Request::default()
        },
    )
    .unwrap();
    // the first mkdir of the jail dir sees its parent vanish (ENOENT)
    f.state
        .lock()
        .unwrap()
        .mkdir_once
        .insert("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.6".into(), libc::ENOENT);
    let j = cg.create_for(6).unwrap();
    assert!(f.has_dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.6"));
    j.remove().unwrap();
    assert!(!f.has_dir("/sys/fs/cgroup/pids/NSJAIL"));
    // a persistent ENOENT is an error naming the directory, after a few tries
    f.state
        .lock()
        .unwrap()
        .mkdir_err
        .insert("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.7".into(), libc::ENOENT);
    let e = cg.create_for(7).unwrap_err().to_string();
    assert!(
        e.contains("mkdir('/sys/fs/cgroup/pids/NSJAIL/NSJAIL.7', 0700)"),
        "{e}"
    );
    assert!(e.contains("cgroup_pids_max=2"), "{e}");
    assert!(
        !f.has_dir("/sys/fs/cgroup/pids/NSJAIL"),
        "created parent left after failure"
    );
}

/// A directory of ours left by an nsjail that died (SIGKILL): marked, unlocked.
fn leftover(f: &FakeFs, p: &str, locked: bool) {
    f.dir(p);
    let mut st = f.state.lock().unwrap();
    st.marked.insert(p.into());
    if locked {
        st.locked.insert(p.into());
    }
}

#[test]
fn a_stale_dir_of_the_same_pid_is_made_afresh_never_adopted() {
    // v2: the leftover NSJAIL.42 of a dead nsjail (same pid reused) is
    // removed and created again, so no counter of the old jail survives.
    let f = Arc::new(pure_v2("\n"));
    let cg = setup(&f, seed_request()).unwrap();
    // created after setup (the sweep at setup would have removed it)
    leftover(&f, "/sys/fs/cgroup/NSJAIL.42", false);
    let j = cg.create_for(42).unwrap();
    let d = PathBuf::from("/sys/fs/cgroup/NSJAIL.42");
    let ops = f.ops();
    let rm = ops.iter().position(|o| *o == Op::Rmdir(d.clone()));
    let mk = ops.iter().position(|o| *o == Op::Mkdir(d.clone()));
    assert!(matches!((rm, mk), (Some(r), Some(m)) if r < m), "{ops:?}");
    j.remove().unwrap();

    // Not marked as ours (the C++ nsjail's, an operator's): refused, untouched.
    f.dir("/sys/fs/cgroup/NSJAIL.43");
    let e = cg.create_for(43).unwrap_err();
    assert!(matches!(e, CgroupError::Exists { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("'/sys/fs/cgroup/NSJAIL.43'") && e.contains("mode"),
        "{e}"
    );
    assert!(f.has_dir("/sys/fs/cgroup/NSJAIL.43"));

    // Ours but locked (a live nsjail in another PID namespace): refused.
    leftover(&f, "/sys/fs/cgroup/NSJAIL.44", true);
    let e = cg.create_for(44).unwrap_err().to_string();
    assert!(e.contains("a running nsjail holds it"), "{e}");
    assert!(f.has_dir("/sys/fs/cgroup/NSJAIL.44"));
}

#[test]
fn v1_stale_jail_dir_is_refused_when_busy() {
    let f = Arc::new(hybrid());
    let cg = setup(&f, seed_request()).unwrap();
    // ours and unlocked, but with a child cgroup: rmdir is EBUSY
    leftover(&f, "/sys/fs/cgroup/memory/NSJAIL/NSJAIL.9", false);
    f.dir("/sys/fs/cgroup/memory/NSJAIL/NSJAIL.9/sub");
    let e = cg.create_for(9).unwrap_err().to_string();
    assert!(e.contains("NSJAIL.9") && e.contains("still holds"), "{e}");
    assert!(f.has_dir("/sys/fs/cgroup/memory/NSJAIL/NSJAIL.9/sub"));
}

#[test]
fn setup_sweeps_only_orphans_that_are_provably_ours() {
    let f = Arc::new(pure_v2("\n"));
    leftover(&f, "/sys/fs/cgroup/NSJAIL.7", false);
    leftover(&f, "/sys/fs/cgroup/NSJAIL_SELF.8", false);
    leftover(&f, "/sys/fs/cgroup/NSJAIL.9", true); // a live owner
    f.dir("/sys/fs/cgroup/NSJAIL.10"); // not marked
    leftover(&f, "/sys/fs/cgroup/NSJAIL.x", false); // not our name
    leftover(&f, "/sys/fs/cgroup/NSJAIL.11", false);
    f.dir("/sys/fs/cgroup/NSJAIL.11/child"); // not empty
    let _cg = setup(&f, seed_request()).unwrap();
    assert!(!f.has_dir("/sys/fs/cgroup/NSJAIL.7"));
    assert!(!f.has_dir("/sys/fs/cgroup/NSJAIL_SELF.8"));
    for kept in ["NSJAIL.9", "NSJAIL.10", "NSJAIL.x", "NSJAIL.11/child"] {
        assert!(
            f.has_dir(&format!("/sys/fs/cgroup/{kept}")),
            "{kept} removed"
        );
    }
    // v1: the orphans below each controller's parent.
    let g = Arc::new(hybrid());
    leftover(&g, "/sys/fs/cgroup/pids/NSJAIL/NSJAIL.5", false);
    leftover(&g, "/sys/fs/cgroup/memory/NSJAIL/NSJAIL.5", false);
    let _cg = setup(&g, seed_request()).unwrap();
    assert!(!g.has_dir("/sys/fs/cgroup/pids/NSJAIL/NSJAIL.5"));
    assert!(!g.has_dir("/sys/fs/cgroup/memory/NSJAIL/NSJAIL.5"));
}
