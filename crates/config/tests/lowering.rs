//! The lowering of command line + config into the typed jail spec: each
//! field lands in its part of the spec, and every check that can fail
//! before clone fails here (so `--check` and a launch agree).

mod common;

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr};

use common::{jail, TempFile};
use nsjail_config::spec::net::{MacvlanMode, RuleProto, RuleVerdict};
use nsjail_config::spec::{JailSpec, LogLevel, RunMode, SpecError};
use nsjail_config::MountApi;

fn spec(args: &[&str]) -> JailSpec {
    jail(args)
        .lower()
        .unwrap_or_else(|e| panic!("{args:?} should lower: {e}"))
}

fn lower_err(args: &[&str]) -> SpecError {
    match jail(args).lower() {
        Ok(_) => panic!("{args:?} should not lower"),
        Err(e) => e,
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

#[test]
fn mode_maps_each_letter() {
    for (flag, mode) in [
        ("-Mo", RunMode::Once),
        ("-Ml", RunMode::Listen),
        ("-Mr", RunMode::Rerun),
        ("-Me", RunMode::Execve),
    ] {
        assert_eq!(spec(&[flag, "--", "/bin/true"]).mode, mode, "{flag}");
    }
}

#[test]
fn namespaces_and_their_clone_flags() {
    let all = spec(&["--", "/bin/true"]).namespaces;
    assert!(all.user && all.mount && all.pid && all.ipc && all.uts && all.net && all.cgroup);
    assert!(!all.time);
    let flags = all.clone_flags();
    assert_eq!(flags & libc::CLONE_NEWNET as u64, libc::CLONE_NEWNET as u64);
    assert_eq!(flags & libc::CLONE_NEWTIME as u64, 0);
    let some = spec(&[
        "-N",
        "--disable_clone_newuser",
        "--disable_clone_newipc",
        "--disable_clone_newuts",
        "--disable_clone_newcgroup",
        "--",
        "/bin/true",
    ])
    .namespaces;
    assert!(!some.net && !some.user && !some.ipc && !some.uts && !some.cgroup);
    assert!(some.mount && some.pid);
    assert_eq!(
        some.clone_flags(),
        (libc::CLONE_NEWNS | libc::CLONE_NEWPID) as u64
    );
}

#[test]
fn exec_path_argv_and_environment() {
    let s = spec(&[
        "-E",
        "A=1",
        "-E",
        "B=2",
        "-E",
        "A=3",
        "--execute_fd",
        "--",
        "/bin/echo",
        "x y",
    ]);
    assert_eq!(s.exec.path, c("/bin/echo"));
    assert_eq!(s.exec.argv, vec![c("/bin/echo"), c("x y")]);
    // a later variable of the same name replaces the earlier one, in place
    assert_eq!(s.exec.envp, vec![c("A=3"), c("B=2")]);
    assert!(s.exec.exec_fd);
    let kept = spec(&["-e", "--", "/bin/true"]);
    assert!(kept
        .exec
        .envp
        .iter()
        .any(|e| e.to_bytes().starts_with(b"PATH=")));
    assert!(!spec(&["--", "/bin/true"]).exec.exec_fd);
}

#[test]
fn nul_bytes_are_refused_before_clone() {
    let f = TempFile::new("nul.cfg", b"envar: \"A=x\\000y\"\n");
    let e = lower_err(&["--config", &f.path(), "--", "/bin/true"]);
    assert!(
        matches!(e, SpecError::Nul { .. }) && e.to_string().contains("'A'"),
        "{e}"
    );
}

#[test]
fn id_maps_are_numbers() {
    let s = spec(&["-u", "0:1000:1", "-g", "5:2000:10", "--", "/bin/true"]);
    assert_eq!(
        (
            s.ids.uids[0].inside,
            s.ids.uids[0].outside,
            s.ids.uids[0].count
        ),
        (0, 1000, 1)
    );
    assert_eq!(
        (
            s.ids.gids[0].inside,
            s.ids.gids[0].outside,
            s.ids.gids[0].count
        ),
        (5, 2000, 10)
    );
    let def = spec(&["--", "/bin/true"]);
    assert_eq!(def.ids.uids.len(), 1, "a default uid map exists");
    assert_eq!(def.ids.gids.len(), 1, "a default gid map exists");
}

#[test]
fn filesystem_entries_in_order_with_root_settings() {
    let s = spec(&[
        "--chroot",
        "/",
        "-R",
        "/etc:/x",
        "-T",
        "/tmp",
        "--rw",
        "--no_pivotroot",
        "--cwd",
        "/tmp",
        "--experimental_mnt",
        "old",
        "--",
        "/bin/true",
    ]);
    let fs = &s.fs;
    assert!(fs.newns && fs.root_rw && fs.no_pivotroot);
    assert_eq!(fs.api, MountApi::Old);
    assert_eq!(fs.cwd, "/tmp");
    assert_eq!(fs.chroot.as_deref(), Some("/"));
    let dsts: Vec<&str> = fs.mounts.iter().map(|m| m.dst.as_str()).collect();
    assert_eq!(dsts, ["/", "/x", "/tmp", "/proc"]);
    assert!(fs.mounts[0].bind && fs.mounts[0].rw);
    assert!(fs.mounts[1].bind && !fs.mounts[1].rw && fs.mounts[1].is_dir);
    assert_eq!(fs.mounts[2].fstype, "tmpfs");
    assert_eq!(fs.mounts[3].fstype, "proc");
    let no_proc = spec(&["--disable_proc", "--", "/bin/true"]);
    assert!(no_proc.fs.mounts.iter().all(|m| m.fstype != "proc"));
    let no_ns = spec(&["--disable_clone_newns", "--chroot", "/", "--", "/bin/true"]);
    assert!(!no_ns.fs.newns && no_ns.fs.mounts.is_empty());
}

#[test]
fn mount_env_prefix_is_checked_while_lowering() {
    let f = TempFile::new(
        "prefix.cfg",
        b"mount { src: \"/b\" dst: \"/d\" is_bind: true prefix_src_env: \"NSJAIL_LOWERING_UNSET\" }\n",
    );
    let e = lower_err(&["--config", &f.path(), "--", "/bin/true"]);
    assert!(
        e.to_string().contains("NSJAIL_LOWERING_UNSET") && e.to_string().contains("prefix_src_env"),
        "{e}"
    );
    let g = TempFile::new(
        "prefix-opt.cfg",
        b"mount { src: \"/b\" dst: \"/d\" is_bind: true mandatory: false prefix_src_env: \"NSJAIL_LOWERING_UNSET\" }\n",
    );
    let s = spec(&["--config", &g.path(), "--", "/bin/true"]);
    let d = s.fs.mounts.iter().find(|m| m.dst == "/d").unwrap();
    assert!(d.skip);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("NSJAIL_LOWERING_UNSET")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn network_is_typed_and_validated() {
    let s = spec(&[
        "--macvlan_iface",
        "eth0",
        "--macvlan_vs_ip",
        "10.0.0.2",
        "--macvlan_vs_nm",
        "255.255.0.0",
        "--macvlan_vs_gw",
        "10.0.0.1",
        "--macvlan_vs_mo",
        "bridge",
        "--",
        "/bin/true",
    ]);
    let mv = s.net.macvlan.as_ref().unwrap();
    assert_eq!(mv.parent, "eth0");
    assert_eq!(mv.addr, Some((Ipv4Addr::new(10, 0, 0, 2), 16)));
    assert_eq!(mv.gw, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(mv.mode, MacvlanMode::Bridge);
    assert!(s.net.newnet && s.net.lo);
    let e = lower_err(&[
        "--macvlan_iface",
        "eth0",
        "--macvlan_vs_ip",
        "bogus",
        "--",
        "/bin/true",
    ]);
    assert!(e.to_string().contains("macvlan_vs_ip: 'bogus'"), "{e}");

    let f = TempFile::new(
        "rules.cfg",
        b"traffic_rule { dst_ip: \"192.0.2.0/24\" proto: UDP action: REJECT }\n",
    );
    let r = spec(&["--config", &f.path(), "--", "/bin/true"]);
    assert_eq!(r.net.rules.len(), 1);
    assert_eq!(r.net.rules[0].proto, Some(RuleProto::Udp));
    assert_eq!(r.net.rules[0].verdict, RuleVerdict::Reject);
    let u = TempFile::new("usernet.cfg", b"user_net { }\n");
    assert!(spec(&["--config", &u.path(), "--", "/bin/true"])
        .net
        .user
        .is_some());
    let e = lower_err(&["--config", &u.path(), "-N", "--", "/bin/true"]);
    assert!(e.to_string().contains("user_net"), "{e}");
}

#[test]
fn cgroup_request_carries_every_limit() {
    let s = spec(&[
        "--cgroup_mem_max",
        "1000",
        "--cgroup_pids_max",
        "7",
        "--cgroup_cpu_ms_per_sec",
        "100",
        "--cgroup_net_cls_classid",
        "9",
        "--cgroup_mem_parent",
        "P",
        "--use_cgroupv2",
        "--",
        "/bin/true",
    ]);
    let r = &s.cgroup;
    assert_eq!(
        (r.mem_max, r.pids_max, r.cpu_ms_per_sec, r.net_cls_classid),
        (1000, 7, 100, 9)
    );
    assert_eq!(r.mem.1, std::path::PathBuf::from("P"));
    assert!(r.use_v2 && r.is_active());
    assert!(!spec(&["--", "/bin/true"]).cgroup.is_active());
}

#[test]
fn rlimits_in_kernel_units() {
    let s = spec(&[
        "--rlimit_as",
        "10",
        "--rlimit_cpu",
        "3",
        "--rlimit_nofile",
        "64",
        "--",
        "/bin/true",
    ]);
    let get = |n: &str| s.rlimits.iter().find(|l| l.name == n).unwrap().value;
    assert_eq!(get("RLIMIT_AS"), 10 << 20);
    assert_eq!(get("RLIMIT_CPU"), 3);
    assert_eq!(get("RLIMIT_NOFILE"), 64);
    assert_eq!(s.rlimit_cpu_secs, Some(3));
    let inf = spec(&["--rlimit_fsize", "inf", "--", "/bin/true"]);
    let fsize = inf
        .rlimits
        .iter()
        .find(|l| l.name == "RLIMIT_FSIZE")
        .unwrap();
    assert_eq!(fsize.value, libc::RLIM64_INFINITY);
    let off = spec(&["--disable_rlimits", "--rlimit_cpu", "3", "--", "/bin/true"]);
    assert!(off.rlimits.is_empty());
    assert_eq!(off.rlimit_cpu_secs, None);
    let soft = spec(&["--rlimit_cpu", "soft", "--", "/bin/true"]);
    assert_eq!(
        soft.rlimit_cpu_secs, None,
        "a SOFT cpu limit is not a fixed one"
    );
}

#[test]
fn seccomp_compiles_while_lowering() {
    let s = spec(&[
        "--seccomp_string",
        "KILL { ptrace } DEFAULT ALLOW",
        "--seccomp_log",
        "--",
        "/bin/true",
    ]);
    let sc = s.seccomp.unwrap();
    assert!(!sc.program.is_empty());
    assert_eq!(sc.rule_count, 1);
    assert!(sc.log);
    assert!(spec(&["--", "/bin/true"]).seccomp.is_none());
    let e = lower_err(&["--seccomp_string", "KILL { nosuchcall }", "--", "/bin/true"]);
    assert!(matches!(e, SpecError::SeccompCompile(_)), "{e}");
    let e = lower_err(&["-P", "/nonexistent/policy.kafel", "--", "/bin/true"]);
    assert!(matches!(e, SpecError::SeccompRead { .. }), "{e}");
}

#[test]
fn process_settings() {
    let s = spec(&[
        "-H",
        "box",
        "--cap",
        "CAP_NET_RAW",
        "--nice_level",
        "5",
        "--max_cpus",
        "1",
        "--persona_addr_no_randomize",
        "--skip_setsid",
        "--silent",
        "--stderr_to_null",
        "--disable_no_new_privs",
        "--pass_fd",
        "7",
        "--oom_score_adj",
        "100",
        "--disable_tsc",
        "--",
        "/bin/true",
    ]);
    let p = &s.process;
    assert_eq!(p.hostname, "box");
    assert_eq!(p.caps, vec![(13, "CAP_NET_RAW".to_string())]);
    assert!(!p.keep_caps);
    assert_eq!(p.nice, 5);
    assert_eq!(p.max_cpus, 1);
    assert_eq!(p.personality, 0x0040000);
    assert!(!p.setsid && p.silent && p.stderr_to_null && !p.no_new_privs && p.disable_tsc);
    assert!(p.pass_fds.contains(&7));
    assert_eq!(p.oom_score_adj, Some(100));
    let d = spec(&["--keep_caps", "--", "/bin/true"]).process;
    assert!(d.keep_caps && d.setsid && d.no_new_privs && d.oom_score_adj.is_none());
    assert_eq!(d.nice, 19, "nsjail's default nice level");
}

#[test]
fn limits_listen_log_and_report() {
    let s = spec(&[
        "-Ml",
        "--port",
        "9000",
        "--bindhost",
        "127.0.0.1",
        "--max_conns",
        "3",
        "-i",
        "2",
        "-t",
        "7",
        "--forward_signals",
        "-v",
        "--run_report",
        "/tmp/r.json",
        "--",
        "/bin/true",
    ]);
    let l = s.listen.as_ref().unwrap();
    assert_eq!(l.addr, Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
    assert_eq!((l.port, l.max_conns, l.max_conns_per_ip), (9000, 3, 2));
    assert_eq!(s.time_limit, 7);
    assert!(s.forward_signals);
    assert_eq!(s.log.level, LogLevel::Debug);
    assert_eq!(s.log.fd, Some(2));
    assert_eq!(
        s.run_report.as_deref(),
        Some(std::path::Path::new("/tmp/r.json"))
    );
    let six = spec(&["-Ml", "--bindhost", "[::1]", "--", "/bin/true"]);
    assert_eq!(six.listen.unwrap().addr, Ipv6Addr::LOCALHOST);
    // a bad bindhost fails only where it is used, as in nsjail
    let e = lower_err(&["-Ml", "--bindhost", "localhost", "--", "/bin/true"]);
    assert!(e.to_string().contains("bindhost"), "{e}");
    assert!(spec(&["-Mo", "--bindhost", "localhost", "--", "/bin/true"])
        .listen
        .is_none());
    let q = spec(&["-q", "-l", "/tmp/x.log", "--", "/bin/true"]);
    assert_eq!(q.log.level, LogLevel::Warning);
    assert_eq!(q.log.file.as_deref(), Some("/tmp/x.log"));
}

#[test]
fn unotify_settings() {
    let f = TempFile::new(
        "unotify.cfg",
        b"seccomp_unotify: true\nseccomp_unotify_report: \"/tmp/u.txt\"\n",
    );
    let s = spec(&["--config", &f.path(), "--", "/bin/true"]);
    assert!(s.unotify);
    assert_eq!(
        s.unotify_report.as_deref(),
        Some(std::path::Path::new("/tmp/u.txt"))
    );
    assert!(!spec(&["--", "/bin/true"]).unotify);
}

/// Issue 14 item 10: the AF_VSOCK filter is for jails with their own
/// network namespace, unless --allow_vsock.
#[test]
fn vsock_is_denied_only_with_a_network_namespace() {
    let lower = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--", "/bin/true"]);
        match nsjail_config::parse_args(a).expect("parse") {
            nsjail_config::Parsed::Run(j) => j.lower().expect("lower"),
            _ => panic!("help"),
        }
    };
    assert!(lower(&[]).deny_vsock);
    assert!(!lower(&["--allow_vsock"]).deny_vsock);
    assert!(!lower(&["--disable_clone_newnet"]).deny_vsock);
}
