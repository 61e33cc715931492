//! Config files: the seed loads with every value as written, JSON equals
//! its text twin, every enum value in both formats, --check on the seed.

mod common;

use common::{fixture, fx, jail, TempFile};
use nsjail_config::proto::config::ns_jail_config::traffic_rule::{
    IpFamily, Protocol, TrafficAction,
};
use nsjail_config::proto::config::ns_jail_config::user_net::nstun_rule::{
    Action as NAction, Direction, Protocol as NProto,
};
use nsjail_config::proto::config::ns_jail_config::user_net::Backend;
use nsjail_config::protobuf::Enum;
use nsjail_config::{
    check_report, load_config_file, load_config_file_with_locs, trap_warnings, ConfigFormat,
    HostFacts, LogLevel, Mode, NsJailConfig, RLimit,
};

#[test]
fn seed_loads_with_every_value_as_written() {
    let c = load_config_file(&fixture("tooljet-python-full.cfg")).unwrap();
    assert_eq!(c.name(), "tooljet-python-full");
    assert_eq!(
        c.description,
        vec!["ToolJet Python Execution - FULL Mode (Maximum Isolation)"]
    );
    assert_eq!(c.mode(), Mode::ONCE);
    // Each namespace field is written `true` in the file; all but
    // clone_newtime default to true too, so the value alone proves nothing:
    // each field's own presence says the line was read into that field.
    for (present, value, name) in [
        (c.has_clone_newuser(), c.clone_newuser(), "user"),
        (c.has_clone_newns(), c.clone_newns(), "ns"),
        (c.has_clone_newpid(), c.clone_newpid(), "pid"),
        (c.has_clone_newipc(), c.clone_newipc(), "ipc"),
        (c.has_clone_newuts(), c.clone_newuts(), "uts"),
        (c.has_clone_newnet(), c.clone_newnet(), "net"),
        (c.has_clone_newcgroup(), c.clone_newcgroup(), "cgroup"),
    ] {
        assert!(
            present,
            "clone_new{name} is set in the file but not present"
        );
        assert!(value, "clone_new{name}: true");
    }
    // Not in the file: absent, with its default.
    assert!(!c.has_clone_newtime() && !c.clone_newtime());
    assert_eq!(c.uidmap.len(), 1);
    assert_eq!(
        (
            c.uidmap[0].inside_id(),
            c.uidmap[0].outside_id(),
            c.uidmap[0].count()
        ),
        ("0", "65534", 1)
    );
    assert_eq!(
        (
            c.gidmap[0].inside_id(),
            c.gidmap[0].outside_id(),
            c.gidmap[0].count()
        ),
        ("0", "65534", 1)
    );
    assert!(!c.keep_caps() && c.has_keep_caps());
    assert!(!c.disable_no_new_privs() && c.has_disable_no_new_privs());
    assert_eq!(c.time_limit(), 10);
    assert_eq!(c.rlimit_cpu(), 5);
    assert_eq!(c.rlimit_as(), 536870912);
    assert_eq!(c.rlimit_fsize(), 1048576);
    assert_eq!(c.rlimit_nofile(), 64);
    assert_eq!(c.rlimit_nproc(), 1);
    assert_eq!(
        c.rlimit_nproc_type(),
        RLimit::SOFT,
        "type not given: default SOFT"
    );
    assert!(!c.has_rlimit_nproc_type());
    assert_eq!(c.rlimit_core(), 0);
    assert!(c.use_cgroupv2());
    assert_eq!(c.cgroup_mem_max(), 134217728);
    assert_eq!(c.cgroup_mem_swap_max(), 0);
    assert_eq!(c.cgroup_cpu_ms_per_sec(), 1000);
    assert_eq!(c.cgroup_pids_max(), 1);
    assert!(c.iface_no_lo());
    assert_eq!(c.cwd(), "/home");
    assert_eq!(c.hostname(), "tooljet-sandbox");
    let m: Vec<(&str, &str, bool, bool, bool)> = c
        .mount
        .iter()
        .map(|m| (m.src(), m.dst(), m.is_bind(), m.rw(), m.mandatory()))
        .collect();
    assert_eq!(
        m,
        vec![
            ("/usr", "/usr", true, false, true),
            ("/lib", "/lib", true, false, true),
            ("/lib64", "/lib64", true, false, false),
            ("/usr/lib", "/usr/lib", true, false, true),
            ("/etc/ld.so.cache", "/etc/ld.so.cache", true, false, false),
            ("/dev/null", "/dev/null", true, true, true),
            ("/dev/zero", "/dev/zero", true, false, true),
            ("/dev/urandom", "/dev/urandom", true, false, true),
            ("", "/home", false, true, true),
            ("", "/tmp", false, true, true),
            ("", "/etc/passwd", false, false, true),
            ("", "/etc/group", false, false, true),
        ]
    );
    assert_eq!(
        (c.mount[8].fstype(), c.mount[8].options()),
        ("tmpfs", "size=52428800")
    );
    assert_eq!(
        (c.mount[9].fstype(), c.mount[9].options()),
        ("tmpfs", "size=16777216")
    );
    assert_eq!(
        c.mount[10].src_content(),
        b"sandbox:x:0:0:Sandbox User:/home:/bin/false"
    );
    assert_eq!(c.mount[11].src_content(), b"sandbox:x:0:");
    assert!(!c.keep_env());
    assert_eq!(c.envar.len(), 10);
    assert_eq!(c.envar[0], "PATH=/usr/local/bin:/usr/bin:/bin");
    assert_eq!(c.envar[9], "MKL_NUM_THREADS=2");
    assert_eq!(c.seccomp_string.len(), 27);
    assert_eq!(c.seccomp_string[0], "ERRNO(1) {");
    assert_eq!(c.seccomp_string[1], " ptrace");
    assert_eq!(
        c.seccomp_string.last().map(String::as_str),
        Some("DEFAULT ALLOW")
    );
    assert!(c.seccomp_string.iter().any(|s| s == " umount2,"));
    assert_eq!(c.log_level(), LogLevel::WARNING);
    assert_eq!(c.log_fd(), -1);
    assert!(!c.mount_proc() && !c.has_mount_proc());
    assert!(c.exec_bin.is_none());
}

#[test]
fn seed_effective_jail_and_check_warnings() {
    let j = jail(&[
        "--check",
        "--config",
        &fx("tooljet-python-full.cfg"),
        "-R",
        "/opt/py:/python",
        "--",
        "/python/bin/python3",
        "/home/code.py",
    ]);
    assert!(j.check_only);
    assert_eq!(j.cfg.log_fd(), -1);
    assert_eq!(j.cfg.log_level(), LogLevel::WARNING);
    assert_eq!(j.cfg.mount.len(), 13, "12 from the file + -R, no /proc");
    assert_eq!(j.cfg.mount[12].dst(), "/python");
    assert_eq!(j.cfg.uidmap[0].outside_id(), "65534");
    // A host that lacks cgroup v2: the fourth trap.
    let host = HostFacts {
        cgroupv2_mount: "/sys/fs/cgroup".into(),
        cgroupv2_is_cgroup2: false,
        ..HostFacts::default()
    };
    let w = trap_warnings(&j, &host);
    let has = |needle: &str| w.iter().any(|l| l.contains(needle));
    assert!(has("rlimit_as: 536870912") && has("512 TiB"), "{w:#?}");
    assert!(has("rlimit_fsize: 1048576") && has("1 TiB"), "{w:#?}");
    assert!(has("rlimit_nproc: 1") && has("SOFT"), "{w:#?}");
    assert!(has("log_fd: -1"), "{w:#?}");
    assert!(has("use_cgroupv2") && has("not a cgroup v2"), "{w:#?}");
    let report = check_report(&j, &host, Some(27), &[]);
    for needle in [
        "namespaces: user mount pid ipc uts net cgroup",
        "  1. '/usr' -> '/usr' [bind ro",
        "uid map: inside 0 -> outside 65534 count 1",
        "RLIMIT_AS",
        "512 TiB (562949953421312 bytes)",
        "RLIMIT_CPU       5 s",
        "memory 128 MiB",
        "pids 1",
        "27 rules",
        "WARNING: log_fd: -1",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
    // With controllers present the cgroup warning goes away, the others stay.
    let good = HostFacts {
        cgroupv2_mount: "/sys/fs/cgroup".into(),
        cgroupv2_is_cgroup2: true,
        cgroupv2_controllers: Some(vec!["cpu".into(), "memory".into(), "pids".into()]),
        ..HostFacts::default()
    };
    let w = trap_warnings(&j, &good);
    assert!(!w.iter().any(|l| l.contains("use_cgroupv2")), "{w:#?}");
    assert_eq!(w.len(), 4, "{w:#?}");
    let partial = HostFacts {
        cgroupv2_controllers: Some(vec!["memory".into()]),
        ..good
    };
    let w = trap_warnings(&j, &partial);
    assert!(w.iter().any(|l| l.contains("pids, cpu")), "{w:#?}");
}

#[test]
fn probe_does_not_fail() {
    let h = HostFacts::probe();
    assert_eq!(h.cgroupv2_mount, std::path::Path::new("/sys/fs/cgroup"));
    assert!(!h.rlimits.is_empty());
}

#[test]
fn json_equals_text_twin() {
    let t = load_config_file_with_locs(&fixture("equiv.cfg")).unwrap();
    let j = load_config_file_with_locs(&fixture("equiv.json")).unwrap();
    assert_eq!(t.format, ConfigFormat::Text);
    assert_eq!(j.format, ConfigFormat::Json);
    assert_eq!(t.cfg, j.cfg);
    // And the values are the ones written, not two equal wrong values.
    let c = t.cfg;
    assert_eq!(c.mode(), Mode::RERUN);
    assert_eq!(c.cgroup_mem_max(), u64::MAX);
    assert_eq!(c.cgroup_mem_swap_max(), -1);
    assert!(c.has_cgroup_mem_swap_max());
    assert_eq!(c.mount[0].src_content(), b"nameserver 8.8.8.8\n");
    assert_eq!(c.user_net.pasta.tcp_map_in(), "8080");
    assert!(!c.user_net.pasta.nat());
    assert!(c.user_net.pasta.enable_tcp(), "default of an unset field");
    assert_eq!(c.rlimit_nproc_type(), RLimit::HARD);
    assert_eq!(c.pass_fd, vec![3, 100]);
}

fn text_and_json(field_text: &str, json: &str) -> (NsJailConfig, NsJailConfig) {
    let t = TempFile::new("e.cfg", field_text.as_bytes());
    let j = TempFile::new("e.json", json.as_bytes());
    let a = load_config_file(&t.0).unwrap_or_else(|e| panic!("{field_text}: {e}"));
    let b = load_config_file(&j.0).unwrap_or_else(|e| panic!("{json}: {e}"));
    (a, b)
}

#[test]
fn every_enum_value_in_both_formats() {
    for m in Mode::VALUES {
        let (a, b) = text_and_json(&format!("mode: {m:?}"), &format!("{{\"mode\": \"{m:?}\"}}"));
        assert_eq!((a.mode(), b.mode()), (*m, *m));
        // By number too, as C++ accepts.
        let (a, b) = text_and_json(
            &format!("mode: {}", m.value()),
            &format!("{{\"mode\": {}}}", m.value()),
        );
        assert_eq!((a.mode(), b.mode()), (*m, *m));
    }
    for l in LogLevel::VALUES {
        let (a, b) = text_and_json(
            &format!("log_level: {l:?}"),
            &format!("{{\"logLevel\": \"{l:?}\"}}"),
        );
        assert_eq!((a.log_level(), b.log_level()), (*l, *l));
    }
    for r in RLimit::VALUES {
        let (a, b) = text_and_json(
            &format!("rlimit_as_type: {r:?} rlimit_msgqueue_type: {r:?}"),
            &format!("{{\"rlimitAsType\": \"{r:?}\", \"rlimit_msgqueue_type\": \"{r:?}\"}}"),
        );
        assert_eq!((a.rlimit_as_type(), b.rlimit_as_type()), (*r, *r));
        assert_eq!(
            (a.rlimit_msgqueue_type(), b.rlimit_msgqueue_type()),
            (*r, *r)
        );
    }
    for p in Protocol::VALUES {
        for act in TrafficAction::VALUES {
            for fam in IpFamily::VALUES {
                let (a, b) = text_and_json(
                    &format!("traffic_rule {{ proto: {p:?} action: {act:?} ip_family: {fam:?} }}"),
                    &format!("{{\"trafficRule\": [{{\"proto\": \"{p:?}\", \"action\": \"{act:?}\", \"ipFamily\": \"{fam:?}\"}}]}}"),
                );
                for c in [&a, &b] {
                    let r = &c.traffic_rule[0];
                    assert_eq!((r.proto(), r.action(), r.ip_family()), (*p, *act, *fam));
                }
            }
        }
    }
    for be in Backend::VALUES {
        let (a, b) = text_and_json(
            &format!("user_net {{ backend: {be:?} }}"),
            &format!("{{\"userNet\": {{\"backend\": \"{be:?}\"}}}}"),
        );
        assert_eq!((a.user_net.backend(), b.user_net.backend()), (*be, *be));
    }
    for d in Direction::VALUES {
        for act in NAction::VALUES {
            for p in NProto::VALUES {
                let (a, b) = text_and_json(
                    &format!("user_net {{ rule6 {{ direction: {d:?} action: {act:?} proto: {p:?} }} }}"),
                    &format!("{{\"userNet\": {{\"rule6\": [{{\"direction\": \"{d:?}\", \"action\": \"{act:?}\", \"proto\": \"{p:?}\"}}]}}}}"),
                );
                for c in [&a, &b] {
                    let r = &c.user_net.rule6[0];
                    assert_eq!((r.direction(), r.action(), r.proto()), (*d, *act, *p));
                }
            }
        }
    }
}

#[test]
fn enum_defaults_match_the_schema() {
    let c = NsJailConfig::new();
    assert_eq!(c.mode(), Mode::ONCE);
    assert_eq!(c.rlimit_as_type(), RLimit::VALUE);
    assert_eq!(c.rlimit_nproc_type(), RLimit::SOFT);
    assert_eq!(c.rlimit_stack_type(), RLimit::SOFT);
    assert_eq!(c.rlimit_memlock_type(), RLimit::SOFT);
    assert_eq!(c.rlimit_rtprio_type(), RLimit::SOFT);
    assert_eq!(c.rlimit_msgqueue_type(), RLimit::SOFT);
    assert_eq!(c.cgroup_mem_swap_max(), -1);
    assert_eq!(c.rlimit_as(), 4096);
    assert_eq!(c.rlimit_stack(), 8);
    assert_eq!(c.rlimit_memlock(), 64);
    assert_eq!(c.rlimit_msgqueue(), 1024);
    assert_eq!(c.macvlan_vs_mo(), "private");
    assert_eq!(c.cgroupv2_mount(), "/sys/fs/cgroup");
    assert!(c.clone_newcgroup() && !c.clone_newtime());
    let r = nsjail_config::proto::config::ns_jail_config::TrafficRule::new();
    assert_eq!(
        (r.proto(), r.action(), r.ip_family()),
        (Protocol::UNKNOWN_PROTO, TrafficAction::DROP, IpFamily::IPV4)
    );
    let n = nsjail_config::proto::config::ns_jail_config::user_net::NstunRule::new();
    assert_eq!(
        (n.direction(), n.action(), n.proto()),
        (Direction::GUEST_TO_HOST, NAction::ALLOW, NProto::ANY)
    );
    let u = nsjail_config::proto::config::ns_jail_config::UserNet::new();
    assert_eq!(
        (u.backend(), u.ip4(), u.ns_iface()),
        (Backend::NSTUN, "10.255.255.2", "eth0")
    );
    let m = nsjail_config::MountPt::new();
    assert!(m.mandatory() && !m.has_is_dir());
}

#[test]
fn unknown_enum_names_are_errors_in_both_formats() {
    let t = TempFile::new("bad.cfg", b"mode: SOMETIMES\n");
    let e = load_config_file(&t.0).unwrap_err().to_string();
    assert!(e.contains("1:7") && e.contains("SOMETIMES"), "{e}");
    let j = TempFile::new("bad.json", b"{\"mode\": \"SOMETIMES\"}");
    let e = load_config_file(&j.0).unwrap_err().to_string();
    assert!(
        e.contains("not valid JSON") && e.contains("SOMETIMES"),
        "{e}"
    );
}

/// -Me keeps the program in the host's PID namespace: as host uid 0 it
/// could kill any root process, which the warnings say; an unprivileged
/// outside uid, or another mode, gives no such warning.
#[test]
fn execve_as_host_root_is_pointed_out() {
    let host = HostFacts::default();
    let warns = |args: &[&str]| trap_warnings(&jail(args), &host);
    let hit = |w: &[String]| w.iter().any(|l| l.contains("mode EXECVE (-Me)"));
    assert!(hit(&warns(&[
        "-Me",
        "-u",
        "0:0",
        "-g",
        "0:0",
        "--",
        "/bin/true"
    ])));
    assert!(hit(&warns(&[
        "-Me",
        "--disable_clone_newuser",
        "-u",
        "0",
        "--",
        "/bin/true"
    ])));
    assert!(!hit(&warns(&[
        "-Me",
        "-u",
        "0:65534",
        "-g",
        "0:65534",
        "--",
        "/bin/true"
    ])));
    assert!(!hit(&warns(&["-Mo", "-u", "0:0", "--", "/bin/true"])));
}
