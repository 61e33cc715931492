//! Table-driven: every flag of the option table, set on the command line,
//! gives the expected effective field. Each flag with a value is tried as
//! `--flag value`, `--flag=value`, and (if it has one) `-X value` and
//! `-Xvalue`; switches as `--flag` and `-X`.

mod common;

use std::collections::BTreeSet;

use common::{fx, jail};
use nsjail_config::getopt::{HasArg, OPTIONS};
use nsjail_config::proto::config::ns_jail_config::user_net::Backend;
use nsjail_config::{parse_args, Jail, LogLevel, Mode, MountApi, Parsed, RLimit};

type Check = fn(&Jail);

fn table() -> Vec<(&'static str, Option<String>, Check)> {
    vec![
        ("mode", Some("r".into()), |j| {
            assert_eq!(j.cfg.mode(), Mode::RERUN)
        }),
        ("config", Some(fx("basic.cfg")), |j| {
            assert_eq!(j.cfg.hostname(), "BASIC")
        }),
        ("exec_file", Some("/bin/echo".into()), |j| {
            assert_eq!(j.cfg.exec_bin.path(), "/bin/echo");
            assert_eq!(j.argv, vec!["/bin/true"]);
        }),
        ("execute_fd", None, |j| assert!(j.cfg.exec_bin.exec_fd())),
        ("chroot", Some("/srv/root".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (m.src(), m.dst(), m.is_bind(), m.rw()),
                ("/srv/root", "/", true, false)
            );
            assert_eq!(j.chroot.as_deref(), Some("/srv/root"));
        }),
        ("no_pivotroot", None, |j| assert!(j.cfg.no_pivotroot())),
        ("rw", None, |j| assert!(j.root_rw)),
        ("user", Some("0:65534:2".into()), |j| {
            let m = &j.cfg.uidmap[0];
            assert_eq!(
                (m.inside_id(), m.outside_id(), m.count(), m.use_newidmap()),
                ("0", "65534", 2, false)
            );
            assert_eq!(j.cfg.uidmap.len(), 1);
        }),
        ("group", Some("0:65534".into()), |j| {
            let m = &j.cfg.gidmap[0];
            assert_eq!(
                (m.inside_id(), m.outside_id(), m.count()),
                ("0", "65534", 1)
            );
        }),
        ("hostname", Some("box".into()), |j| {
            assert_eq!(j.cfg.hostname(), "box")
        }),
        ("cwd", Some("/work".into()), |j| {
            assert_eq!(j.cfg.cwd(), "/work")
        }),
        ("port", Some("8080".into()), |j| {
            assert_eq!(j.cfg.port(), 8080);
            assert_eq!(j.cfg.mode(), Mode::LISTEN);
        }),
        ("bindhost", Some("127.0.0.1".into()), |j| {
            assert_eq!(j.cfg.bindhost(), "127.0.0.1")
        }),
        ("max_conns", Some("3".into()), |j| {
            assert_eq!(j.cfg.max_conns(), 3)
        }),
        ("max_conns_per_ip", Some("0x10".into()), |j| {
            assert_eq!(j.cfg.max_conns_per_ip(), 16)
        }),
        ("log", Some("/tmp/nsj.log".into()), |j| {
            assert_eq!(j.cfg.log_file(), "/tmp/nsj.log");
            assert!(!j.cfg.has_log_fd());
        }),
        ("log_fd", Some("5".into()), |j| {
            assert_eq!(j.cfg.log_fd(), 5);
            assert!(!j.cfg.has_log_file());
        }),
        ("time_limit", Some("5".into()), |j| {
            assert_eq!(j.cfg.time_limit(), 5)
        }),
        ("max_cpus", Some("2".into()), |j| {
            assert_eq!(j.cfg.max_cpus(), 2)
        }),
        ("daemon", None, |j| {
            assert!(j.cfg.daemon());
            assert_eq!(j.cfg.log_file(), "/var/log/nsjail.log");
        }),
        ("verbose", None, |j| {
            assert_eq!(j.cfg.log_level(), LogLevel::DEBUG)
        }),
        ("quiet", None, |j| {
            assert_eq!(j.cfg.log_level(), LogLevel::WARNING)
        }),
        ("really_quiet", None, |j| {
            assert_eq!(j.cfg.log_level(), LogLevel::FATAL)
        }),
        ("keep_env", None, |j| assert!(j.cfg.keep_env())),
        ("env", Some("A=b=c".into()), |j| {
            assert_eq!(j.cfg.envar, vec!["A=b=c"])
        }),
        ("keep_caps", None, |j| assert!(j.cfg.keep_caps())),
        ("cap", Some("CAP_NET_RAW".into()), |j| {
            assert_eq!(j.cfg.cap, vec!["CAP_NET_RAW"])
        }),
        ("silent", None, |j| assert!(j.cfg.silent())),
        ("stderr_to_null", None, |j| assert!(j.cfg.stderr_to_null())),
        ("skip_setsid", None, |j| assert!(j.cfg.skip_setsid())),
        ("pass_fd", Some("9".into()), |j| {
            assert_eq!(j.cfg.pass_fd, vec![9])
        }),
        ("disable_no_new_privs", None, |j| {
            assert!(j.cfg.disable_no_new_privs())
        }),
        ("rlimit_as", Some("64".into()), |j| {
            assert_eq!(
                (j.cfg.rlimit_as(), j.cfg.rlimit_as_type()),
                (64, RLimit::VALUE)
            )
        }),
        ("rlimit_core", Some("2".into()), |j| {
            assert_eq!(j.cfg.rlimit_core(), 2)
        }),
        ("rlimit_cpu", Some("inf".into()), |j| {
            assert_eq!(j.cfg.rlimit_cpu_type(), RLimit::INF)
        }),
        ("rlimit_fsize", Some("max".into()), |j| {
            assert_eq!(j.cfg.rlimit_fsize_type(), RLimit::HARD)
        }),
        ("rlimit_nofile", Some("hard".into()), |j| {
            assert_eq!(j.cfg.rlimit_nofile_type(), RLimit::HARD)
        }),
        ("rlimit_nproc", Some("7".into()), |j| {
            assert_eq!(
                (j.cfg.rlimit_nproc(), j.cfg.rlimit_nproc_type()),
                (7, RLimit::VALUE)
            )
        }),
        ("rlimit_stack", Some("16".into()), |j| {
            assert_eq!(
                (j.cfg.rlimit_stack(), j.cfg.rlimit_stack_type()),
                (16, RLimit::VALUE)
            )
        }),
        ("rlimit_memlock", Some("128".into()), |j| {
            assert_eq!(
                (j.cfg.rlimit_memlock(), j.cfg.rlimit_memlock_type()),
                (128, RLimit::VALUE)
            )
        }),
        ("rlimit_rtprio", Some("def".into()), |j| {
            assert_eq!(j.cfg.rlimit_rtprio_type(), RLimit::SOFT)
        }),
        ("rlimit_msgqueue", Some("4096".into()), |j| {
            assert_eq!(
                (j.cfg.rlimit_msgqueue(), j.cfg.rlimit_msgqueue_type()),
                (4096, RLimit::VALUE)
            )
        }),
        ("disable_rlimits", None, |j| assert!(j.cfg.disable_rl())),
        ("persona_addr_compat_layout", None, |j| {
            assert!(j.cfg.persona_addr_compat_layout())
        }),
        ("persona_mmap_page_zero", None, |j| {
            assert!(j.cfg.persona_mmap_page_zero())
        }),
        ("persona_read_implies_exec", None, |j| {
            assert!(j.cfg.persona_read_implies_exec())
        }),
        ("persona_addr_limit_3gb", None, |j| {
            assert!(j.cfg.persona_addr_limit_3gb())
        }),
        ("persona_addr_no_randomize", None, |j| {
            assert!(j.cfg.persona_addr_no_randomize())
        }),
        ("disable_clone_newnet", None, |j| {
            assert!(!j.cfg.clone_newnet())
        }),
        ("disable_clone_newuser", None, |j| {
            assert!(!j.cfg.clone_newuser())
        }),
        ("disable_clone_newns", None, |j| {
            assert!(!j.cfg.clone_newns())
        }),
        ("disable_clone_newpid", None, |j| {
            assert!(!j.cfg.clone_newpid())
        }),
        ("disable_clone_newipc", None, |j| {
            assert!(!j.cfg.clone_newipc())
        }),
        ("disable_clone_newuts", None, |j| {
            assert!(!j.cfg.clone_newuts())
        }),
        ("disable_clone_newcgroup", None, |j| {
            assert!(!j.cfg.clone_newcgroup())
        }),
        ("enable_clone_newtime", None, |j| {
            assert!(j.cfg.clone_newtime())
        }),
        ("uid_mapping", Some("0:100000:65536".into()), |j| {
            let m = &j.cfg.uidmap[0];
            assert_eq!(
                (m.inside_id(), m.outside_id(), m.count(), m.use_newidmap()),
                ("0", "100000", 65536, true)
            );
        }),
        ("gid_mapping", Some("0:100000:65536".into()), |j| {
            let m = &j.cfg.gidmap[0];
            assert_eq!(
                (m.inside_id(), m.outside_id(), m.count(), m.use_newidmap()),
                ("0", "100000", 65536, true)
            );
        }),
        ("bindmount_ro", Some("/usr".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (m.src(), m.dst(), m.is_bind(), m.rw(), m.has_is_dir()),
                ("/usr", "/usr", true, false, false)
            );
        }),
        ("bindmount", Some("/data:/mnt:uid=1".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (m.src(), m.dst(), m.is_bind(), m.rw(), m.options()),
                ("/data", "/mnt", true, true, "uid=1")
            );
        }),
        ("tmpfsmount", Some("/tmp".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (
                    m.src(),
                    m.dst(),
                    m.fstype(),
                    m.options(),
                    m.rw(),
                    m.is_dir(),
                    m.is_bind()
                ),
                ("", "/tmp", "tmpfs", "size=4194304", true, true, false)
            );
        }),
        ("mount", Some("none:/t:tmpfs:size=1:x=a:b".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (
                    m.src(),
                    m.dst(),
                    m.fstype(),
                    m.options(),
                    m.rw(),
                    m.is_bind()
                ),
                ("none", "/t", "tmpfs", "size=1:x=a:b", true, false)
            );
        }),
        ("symlink", Some("/proc/self/fd:/dev/fd".into()), |j| {
            let m = &j.cfg.mount[0];
            assert_eq!(
                (m.src(), m.dst(), m.is_symlink(), m.is_dir()),
                ("/proc/self/fd", "/dev/fd", true, false)
            );
        }),
        ("disable_proc", None, |j| {
            assert!(!j.cfg.mount_proc());
            assert!(j.cfg.mount.iter().all(|m| m.fstype() != "proc"));
        }),
        ("proc_path", Some("/myproc".into()), |j| {
            let m = j.cfg.mount.last().unwrap();
            assert_eq!((m.dst(), m.fstype(), m.rw()), ("/myproc", "proc", false));
            assert!(j.cfg.mount_proc());
        }),
        ("proc_rw", None, |j| {
            let m = j.cfg.mount.last().unwrap();
            assert_eq!((m.dst(), m.fstype(), m.rw()), ("/proc", "proc", true));
        }),
        ("experimental_mnt", Some("new".into()), |j| {
            assert_eq!(j.mount_api, MountApi::New)
        }),
        ("seccomp_policy", Some("/etc/p.kafel".into()), |j| {
            assert_eq!(j.cfg.seccomp_policy_file(), "/etc/p.kafel")
        }),
        ("seccomp_string", Some("DEFAULT ALLOW".into()), |j| {
            assert_eq!(j.cfg.seccomp_string, vec!["DEFAULT ALLOW"])
        }),
        ("seccomp_log", None, |j| assert!(j.cfg.seccomp_log())),
        ("seccomp_unotify", None, |j| {
            assert!(j.cfg.seccomp_unotify())
        }),
        ("seccomp_unotify_report", Some("/tmp/r".into()), |j| {
            assert_eq!(j.cfg.seccomp_unotify_report(), "/tmp/r")
        }),
        ("nice_level", Some("-5".into()), |j| {
            assert_eq!(j.cfg.nice_level(), -5)
        }),
        ("cgroup_mem_max", Some("134217728".into()), |j| {
            assert_eq!(j.cfg.cgroup_mem_max(), 134217728)
        }),
        ("cgroup_mem_memsw_max", Some("268435456".into()), |j| {
            assert_eq!(j.cfg.cgroup_mem_memsw_max(), 268435456)
        }),
        ("cgroup_mem_swap_max", Some("0".into()), |j| {
            assert_eq!(j.cfg.cgroup_mem_swap_max(), 0)
        }),
        ("cgroup_mem_mount", Some("/cg/mem".into()), |j| {
            assert_eq!(j.cfg.cgroup_mem_mount(), "/cg/mem")
        }),
        ("cgroup_mem_parent", Some("P".into()), |j| {
            assert_eq!(j.cfg.cgroup_mem_parent(), "P")
        }),
        ("cgroup_pids_max", Some("10".into()), |j| {
            assert_eq!(j.cfg.cgroup_pids_max(), 10)
        }),
        ("cgroup_pids_mount", Some("/cg/pids".into()), |j| {
            assert_eq!(j.cfg.cgroup_pids_mount(), "/cg/pids")
        }),
        ("cgroup_pids_parent", Some("Q".into()), |j| {
            assert_eq!(j.cfg.cgroup_pids_parent(), "Q")
        }),
        ("cgroup_net_cls_classid", Some("0x100001".into()), |j| {
            assert_eq!(j.cfg.cgroup_net_cls_classid(), 0x100001)
        }),
        ("cgroup_net_cls_mount", Some("/cg/nc".into()), |j| {
            assert_eq!(j.cfg.cgroup_net_cls_mount(), "/cg/nc")
        }),
        ("cgroup_net_cls_parent", Some("R".into()), |j| {
            assert_eq!(j.cfg.cgroup_net_cls_parent(), "R")
        }),
        ("cgroup_cpu_ms_per_sec", Some("500".into()), |j| {
            assert_eq!(j.cfg.cgroup_cpu_ms_per_sec(), 500)
        }),
        ("cgroup_cpu_mount", Some("/cg/cpu".into()), |j| {
            assert_eq!(j.cfg.cgroup_cpu_mount(), "/cg/cpu")
        }),
        ("cgroup_cpu_parent", Some("S".into()), |j| {
            assert_eq!(j.cfg.cgroup_cpu_parent(), "S")
        }),
        ("cgroupv2_mount", Some("/cg2".into()), |j| {
            assert_eq!(j.cfg.cgroupv2_mount(), "/cg2")
        }),
        ("use_cgroupv2", None, |j| assert!(j.cfg.use_cgroupv2())),
        ("detect_cgroupv2", None, |j| {
            assert!(j.cfg.detect_cgroupv2())
        }),
        ("iface_no_lo", None, |j| assert!(j.cfg.iface_no_lo())),
        ("iface_own", Some("eth1".into()), |j| {
            assert_eq!(j.cfg.iface_own, vec!["eth1"])
        }),
        ("macvlan_iface", Some("eth0".into()), |j| {
            assert_eq!(j.cfg.macvlan_iface(), "eth0")
        }),
        ("macvlan_vs_ip", Some("10.0.0.2".into()), |j| {
            assert_eq!(j.cfg.macvlan_vs_ip(), "10.0.0.2")
        }),
        ("macvlan_vs_nm", Some("255.0.0.0".into()), |j| {
            assert_eq!(j.cfg.macvlan_vs_nm(), "255.0.0.0")
        }),
        ("macvlan_vs_gw", Some("10.0.0.1".into()), |j| {
            assert_eq!(j.cfg.macvlan_vs_gw(), "10.0.0.1")
        }),
        ("macvlan_vs_ma", Some("ba:ad:ba:be:45:00".into()), |j| {
            assert_eq!(j.cfg.macvlan_vs_ma(), "ba:ad:ba:be:45:00")
        }),
        ("macvlan_vs_mo", Some("VEPA".into()), |j| {
            assert_eq!(j.cfg.macvlan_vs_mo(), "vepa")
        }),
        ("disable_tsc", None, |j| assert!(j.cfg.disable_tsc())),
        ("forward_signals", None, |j| {
            assert!(j.cfg.forward_signals())
        }),
        ("use_core_scheduling", None, |j| {
            assert!(j.cfg.use_core_scheduling())
        }),
        ("user_net", None, |j| {
            assert!(j.cfg.user_net.is_some());
            assert_eq!(j.cfg.user_net.backend(), Backend::NSTUN);
        }),
        ("use_pasta", None, |j| {
            assert!(j.cfg.user_net.enable());
            assert!(!j.cfg.user_net.has_backend());
        }),
        ("oom_score_adj", Some("-500".into()), |j| {
            assert_eq!(j.cfg.oom_score_adj(), -500)
        }),
        ("check", None, |j| assert!(j.check_only)),
        ("allow_bind_symlinks", None, |j| {
            assert!(j.allow_bind_symlinks)
        }),
        ("allow_vsock", None, |j| {
            assert!(j.allow_vsock);
            assert!(!j.lower().unwrap().deny_vsock);
        }),
        ("run_report", Some("/tmp/report.json".into()), |j| {
            assert_eq!(
                j.run_report.as_deref(),
                Some(std::path::Path::new("/tmp/report.json"))
            )
        }),
    ]
}

fn nix_uid() -> u32 {
    nsjail_config::IdKind::User.current()
}

#[test]
fn every_flag_sets_its_field_in_every_spelling() {
    let mut covered = BTreeSet::new();
    for (long, value, check) in table() {
        let spec = OPTIONS
            .iter()
            .find(|o| o.long == long)
            .unwrap_or_else(|| panic!("--{long} is not in the option table"));
        covered.insert(long);
        let mut forms: Vec<Vec<String>> = Vec::new();
        match (&value, spec.has_arg) {
            (Some(v), HasArg::Required) => {
                forms.push(vec![format!("--{long}"), v.clone()]);
                forms.push(vec![format!("--{long}={v}")]);
                if let Some(c) = spec.short {
                    forms.push(vec![format!("-{c}"), v.clone()]);
                    forms.push(vec![format!("-{c}{v}")]);
                }
            }
            (None, HasArg::No) => {
                forms.push(vec![format!("--{long}")]);
                if let Some(c) = spec.short {
                    forms.push(vec![format!("-{c}")]);
                }
            }
            _ => panic!("table entry for --{long} disagrees with its has_arg"),
        }
        for mut args in forms {
            args.extend(["--".to_string(), "/bin/true".to_string()]);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let j = jail(&argv);
            check(&j);
        }
    }
    // Both end the scan instead of setting anything: tested on their own.
    covered.insert("help");
    covered.insert("version");
    let all: BTreeSet<&str> = OPTIONS.iter().map(|o| o.long).collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "flags without a table entry: {missing:?}"
    );
}

#[test]
fn help_in_both_spellings() {
    for a in ["-h", "--help", "--he"] {
        assert!(matches!(parse_args([a]), Ok(Parsed::Help)), "{a}");
    }
    // Help wins even without a command, and stops at its position.
    assert!(matches!(
        parse_args(["-v", "-h", "--bogus"]),
        Ok(Parsed::Help)
    ));
}

#[test]
fn version_in_both_spellings() {
    for a in ["-V", "--version", "--vers"] {
        assert!(matches!(parse_args([a]), Ok(Parsed::Version)), "{a}");
    }
    // Like --help: wins without a command, and stops the scan where it is.
    assert!(matches!(
        parse_args(["-q", "-V", "--bogus"]),
        Ok(Parsed::Version)
    ));
    // -v is still verbose, and bundles with -V.
    assert!(matches!(parse_args(["-vV"]), Ok(Parsed::Version)));
    let j = jail(&["-v", "--", "/bin/true"]);
    assert_eq!(j.cfg.log_level(), LogLevel::DEBUG);
}

#[test]
fn defaults_without_flags() {
    let j = jail(&["--", "/bin/true", "a"]);
    let me = nix_uid();
    assert_eq!(j.argv, vec!["/bin/true", "a"]);
    assert_eq!(j.cfg.exec_bin.path(), "/bin/true");
    assert_eq!(j.cfg.mode(), Mode::ONCE);
    assert_eq!(j.cfg.time_limit(), 600);
    assert_eq!(j.cfg.hostname(), "NSJAIL");
    assert_eq!(j.cfg.nice_level(), 19);
    assert_eq!(j.cfg.log_fd(), 2);
    assert_eq!(j.cfg.log_level(), LogLevel::INFO);
    // On the CLI /proc is mounted by default, last, read-only.
    assert_eq!(j.cfg.mount.len(), 1);
    let p = &j.cfg.mount[0];
    assert_eq!((p.dst(), p.fstype(), p.rw()), ("/proc", "proc", false));
    assert!(j.cfg.mount_proc());
    // Default maps: current uid/gid to itself.
    assert_eq!(j.cfg.uidmap.len(), 1);
    assert_eq!(j.cfg.uidmap[0].inside_id(), me.to_string());
    assert_eq!(j.cfg.uidmap[0].outside_id(), me.to_string());
    assert_eq!(j.cfg.gidmap.len(), 1);
    assert_eq!(j.mount_api, MountApi::Auto);
    assert!(!j.check_only);
}

#[test]
fn mount_order_chroot_first_proc_last() {
    let j = jail(&[
        "-R",
        "/usr",
        "--chroot",
        "/srv",
        "-T",
        "/tmp",
        "--rw",
        "-s",
        "/a:/b",
        "--",
        "/bin/true",
    ]);
    let dsts: Vec<&str> = j.cfg.mount.iter().map(|m| m.dst()).collect();
    assert_eq!(dsts, vec!["/", "/usr", "/tmp", "/b", "/proc"]);
    assert!(j.cfg.mount[0].rw(), "--rw makes the chroot bind writable");
    assert!(j.cfg.mount[0].is_dir());
}

#[test]
fn rlimit_keywords_are_case_insensitive_and_number_resets_type() {
    let j = jail(&[
        "--rlimit_nproc",
        "SOFT",
        "--rlimit_stack",
        "Hard",
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.rlimit_nproc_type(), RLimit::SOFT);
    assert_eq!(j.cfg.rlimit_stack_type(), RLimit::HARD);
    let j = jail(&[
        "--rlimit_nproc",
        "inf",
        "--rlimit_nproc",
        "3",
        "--",
        "/bin/true",
    ]);
    assert_eq!(
        (j.cfg.rlimit_nproc(), j.cfg.rlimit_nproc_type()),
        (3, RLimit::VALUE)
    );
}

#[test]
fn bundled_short_options() {
    let j = jail(&["-Mo", "-vt5", "-Ne", "-Hh", "--", "/bin/true"]);
    assert_eq!(j.cfg.mode(), Mode::ONCE);
    assert_eq!(j.cfg.log_level(), LogLevel::DEBUG);
    assert_eq!(j.cfg.time_limit(), 5);
    assert!(!j.cfg.clone_newnet());
    assert!(j.cfg.keep_env());
    assert_eq!(j.cfg.hostname(), "h");
    let j = jail(&["-Ml", "--", "/bin/true"]);
    assert_eq!(j.cfg.mode(), Mode::LISTEN);
    let j = jail(&["-Mexecve", "--", "/bin/true"]);
    assert_eq!(j.cfg.mode(), Mode::EXECVE);
}

#[test]
fn command_after_double_dash_and_permuted_operands() {
    let j = jail(&["/bin/echo", "-t", "3", "x", "--", "-v", "--rw"]);
    assert_eq!(j.argv, vec!["/bin/echo", "x", "-v", "--rw"]);
    assert_eq!(j.cfg.time_limit(), 3);
    assert_eq!(
        j.cfg.log_level(),
        LogLevel::INFO,
        "-v after -- is an argument"
    );
    assert!(!j.root_rw);
}

#[test]
fn repeated_flags_accumulate_or_override() {
    let j = jail(&[
        "-E",
        "A=1",
        "-E",
        "B=2",
        "--cap",
        "CAP_CHOWN",
        "--cap",
        "CAP_KILL",
        "-u",
        "0:1000",
        "-u",
        "1:2000:10",
        "-t",
        "1",
        "-t",
        "2",
        "--pass_fd",
        "3",
        "--pass_fd",
        "4",
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.envar, vec!["A=1", "B=2"]);
    assert_eq!(j.cfg.cap, vec!["CAP_CHOWN", "CAP_KILL"]);
    assert_eq!(j.cfg.uidmap.len(), 2);
    assert_eq!(j.cfg.uidmap[1].count(), 10);
    assert_eq!(j.cfg.time_limit(), 2);
    assert_eq!(j.cfg.pass_fd, vec![3, 4]);
}

#[test]
fn bare_env_name_copies_nsjails_value() {
    // PATH is set in every test environment we run in; skip otherwise.
    let Ok(path) = std::env::var("PATH") else {
        eprintln!("SKIP bare_env_name_copies_nsjails_value: PATH is not set");
        return;
    };
    let j = jail(&["-E", "PATH", "--", "/bin/true"]);
    assert_eq!(j.cfg.envar, vec![format!("PATH={path}")]);
    let j = jail(&[
        "-E",
        "NSJAIL_CONFIG_TEST_SURELY_UNSET_VAR",
        "--",
        "/bin/true",
    ]);
    assert!(j.cfg.envar.is_empty());
    assert!(j
        .warnings
        .iter()
        .any(|w| w.contains("NSJAIL_CONFIG_TEST_SURELY_UNSET_VAR")));
}

#[test]
fn user_names_resolve() {
    let j = jail(&["-u", "root:root", "-g", "root", "--", "/bin/true"]);
    assert_eq!(j.cfg.uidmap[0].inside_id(), "0");
    assert_eq!(j.cfg.uidmap[0].outside_id(), "0");
    assert_eq!(j.cfg.gidmap[0].inside_id(), "0");
    assert_eq!(j.cfg.gidmap[0].outside_id(), nix_gid().to_string());
}

fn nix_gid() -> u32 {
    nsjail_config::IdKind::Group.current()
}

#[test]
fn usage_lists_every_flag() {
    let u = nsjail_config::usage();
    for o in OPTIONS {
        assert!(
            u.contains(&format!(" --{}", o.long)),
            "--{} missing from usage",
            o.long
        );
        if let Some(c) = o.short {
            assert!(
                u.contains(&format!("--{}|-{c}", o.long)),
                "-{c} missing from usage"
            );
        }
    }
}
