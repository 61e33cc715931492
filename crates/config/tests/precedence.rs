//! nsjail's order semantics: `--config` replaces the proto where it
//! appears, later flags override it, the listed survivors survive, a CLI
//! command replaces argv but not a config's exec_bin.path.

mod common;

use common::{fx, jail};
use nsjail_config::{LogLevel, MountApi};

#[test]
fn flags_before_config_are_discarded_after_override() {
    // Observed with real nsjail: -H before -t 5 --config basic.cfg gives
    // hostname BASIC and time_limit 100.
    let j = jail(&[
        "-H",
        "before",
        "-t",
        "5",
        "--config",
        &fx("basic.cfg"),
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.hostname(), "BASIC");
    assert_eq!(j.cfg.time_limit(), 100);
    assert!(
        j.warnings.iter().any(|w| w.contains("--hostname")
            && w.contains("--time_limit")
            && w.contains("discarded")),
        "{:?}",
        j.warnings
    );
    let j = jail(&[
        "--config",
        &fx("basic.cfg"),
        "-H",
        "after",
        "-t",
        "5",
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.hostname(), "after");
    assert_eq!(j.cfg.time_limit(), 5);
    assert!(j.warnings.is_empty(), "{:?}", j.warnings);
}

#[test]
fn proto_lists_before_config_are_lost() {
    let j = jail(&[
        "-R",
        "/usr",
        "-E",
        "CLI=1",
        "--seccomp_string",
        "X",
        "-C",
        &fx("basic.cfg"),
        "--",
        "/bin/true",
    ]);
    assert!(j.cfg.mount.iter().all(|m| m.dst() != "/usr"));
    assert_eq!(j.cfg.envar, vec!["X=1"]);
    assert!(j.cfg.seccomp_string.is_empty());
}

#[test]
fn seccomp_string_after_config_appends() {
    let j = jail(&[
        "-C",
        &fx("tooljet-python-full.cfg"),
        "--seccomp_string",
        "// extra",
        "--",
        "/bin/true",
    ]);
    assert_eq!(
        j.cfg.seccomp_string.last().map(String::as_str),
        Some("// extra")
    );
    assert!(j.cfg.seccomp_string.len() > 2);
}

#[test]
fn survivors_survive_config() {
    let j = jail(&[
        "--chroot",
        "/srv",
        "--rw",
        "--proc_rw",
        "--pass_fd",
        "5",
        "-u",
        "1:1000",
        "-g",
        "2:2000",
        "--experimental_mnt",
        "auto",
        "-L",
        "9",
        "-v",
        "--check",
        "--run_report",
        "/tmp/r.json",
        "--config",
        &fx("noproc.cfg"),
        "--proc_path",
        "/proc2",
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.hostname(), "NOPROC");
    let m0 = &j.cfg.mount[0];
    assert_eq!((m0.src(), m0.dst(), m0.rw()), ("/srv", "/", true));
    let last = j.cfg.mount.last().unwrap();
    assert_eq!((last.dst(), last.rw()), ("/proc2", true));
    assert_eq!(j.cfg.pass_fd, vec![5]);
    assert_eq!(j.cfg.uidmap[0].inside_id(), "1");
    assert_eq!(j.cfg.gidmap[0].outside_id(), "2000");
    assert_eq!(j.mount_api, MountApi::Auto);
    assert_eq!(j.cfg.log_fd(), 9);
    assert_eq!(j.cfg.log_level(), LogLevel::DEBUG);
    assert!(j.check_only);
    assert!(j.run_report.is_some());
}

#[test]
fn config_maps_append_to_cli_maps_and_fds_too() {
    let j = jail(&[
        "-u",
        "0:1000",
        "--pass_fd",
        "4",
        "--config",
        &fx("basic.cfg"),
        "--",
        "/bin/true",
    ]);
    let me = nsjail_config::IdKind::User.current().to_string();
    let uids: Vec<(String, String)> = j
        .cfg
        .uidmap
        .iter()
        .map(|m| (m.inside_id().to_string(), m.outside_id().to_string()))
        .collect();
    assert_eq!(uids, vec![("0".into(), "1000".into()), ("5".into(), me)]);
    assert_eq!(j.cfg.gidmap.len(), 1);
    assert_eq!(j.cfg.gidmap[0].inside_id(), "6");
    assert_eq!(j.cfg.gidmap[0].count(), 1, "count 0 becomes 1");
    assert_eq!(j.cfg.pass_fd, vec![4, 7]);
}

#[test]
fn config_log_settings_apply_without_command_line_ones() {
    // basic.cfg sets log_file + ERROR.
    let j = jail(&["--config", &fx("basic.cfg"), "--", "/bin/true"]);
    assert_eq!(j.cfg.log_file(), "/tmp/cfg.log");
    assert!(!j.cfg.has_log_fd());
    assert_eq!(j.cfg.log_level(), LogLevel::ERROR);
}

#[test]
fn command_line_log_settings_win_over_the_config_wherever_they_stand() {
    // Before --config (which nsjail would let the file override) and after.
    for args in [
        &[
            "-L",
            "7",
            "-q",
            "--config",
            &fx("basic.cfg"),
            "--",
            "/bin/true",
        ][..],
        &[
            "--config",
            &fx("basic.cfg"),
            "-L",
            "7",
            "-q",
            "--",
            "/bin/true",
        ],
    ] {
        let j = jail(args);
        assert_eq!(j.cfg.log_fd(), 7, "{args:?}");
        assert!(!j.cfg.has_log_file(), "{args:?}");
        assert_eq!(j.cfg.log_level(), LogLevel::WARNING, "{args:?}");
    }
    let j = jail(&[
        "-l",
        "/tmp/cli.log",
        "--config",
        &fx("basic.cfg"),
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.log_file(), "/tmp/cli.log");
    assert_eq!(
        j.cfg.log_level(),
        LogLevel::ERROR,
        "the config's level stays"
    );
}

#[test]
fn verbose_shows_the_log_a_config_silenced() {
    // The seed config sets log_fd: -1.
    let seed = fx("tooljet-python-full.cfg");
    let j = jail(&["--config", &seed, "--", "/bin/true"]);
    assert_eq!(j.cfg.log_fd(), -1);
    let j = jail(&["-v", "--config", &seed, "--", "/bin/true"]);
    assert_eq!((j.cfg.log_fd(), j.cfg.log_level()), (2, LogLevel::DEBUG));
    // An explicit target on the command line is kept, -1 included.
    let j = jail(&["-v", "-L", "-1", "--config", &seed, "--", "/bin/true"]);
    assert_eq!((j.cfg.log_fd(), j.cfg.log_level()), (-1, LogLevel::DEBUG));
    // -q and -Q ask for less: the config's silence stays.
    for q in ["-q", "-Q"] {
        let j = jail(&[q, "--config", &seed, "--", "/bin/true"]);
        assert_eq!(j.cfg.log_fd(), -1, "{q}");
    }
}

#[test]
fn proc_in_config_mode() {
    // No mount_proc in the file: no /proc, even though the CLI default is on.
    let j = jail(&["--config", &fx("noproc.cfg"), "--", "/bin/true"]);
    assert!(!j.cfg.mount_proc());
    assert!(j.cfg.mount.iter().all(|m| m.fstype() != "proc"));
    // mount_proc: true keeps it, last.
    let j = jail(&["--config", &fx("basic.cfg"), "--", "/bin/true"]);
    assert_eq!(j.cfg.mount.last().unwrap().fstype(), "proc");
    // --disable_proc before the config wins over mount_proc: true.
    let j = jail(&[
        "--disable_proc",
        "--config",
        &fx("basic.cfg"),
        "--",
        "/bin/true",
    ]);
    assert!(j.cfg.mount.iter().all(|m| m.fstype() != "proc"));
}

#[test]
fn cli_command_replaces_argv_not_exec_bin_path() {
    // Observed: config exec_bin /bin/echo + -- /bin/false cli-arg runs
    // /bin/echo with argv [/bin/false, cli-arg].
    let j = jail(&["--config", &fx("echo.cfg"), "--", "/bin/false", "cli-arg"]);
    assert_eq!(j.cfg.exec_bin.path(), "/bin/echo");
    assert_eq!(j.argv, vec!["/bin/false", "cli-arg"]);
    assert!(j.cli_command);
    // Without a CLI command the config's argv is used.
    let j = jail(&["--config", &fx("basic.cfg")]);
    assert_eq!(j.argv, vec!["/bin/echo", "from-config"]);
    assert!(!j.cli_command);
    // -x after the config replaces the path, argv stays.
    let j = jail(&["--config", &fx("basic.cfg"), "-x", "/bin/cat"]);
    assert_eq!(j.cfg.exec_bin.path(), "/bin/cat");
    assert_eq!(j.argv, vec!["/bin/echo", "from-config"]);
}

#[test]
fn exec_bin_arg0_overrides_argv0() {
    let j = jail(&["--config", &fx("equiv.cfg")]);
    assert_eq!(j.argv, vec!["sh", "-c", "echo hi"]);
    assert_eq!(j.cfg.exec_bin.path(), "/bin/sh");
    assert!(j.cfg.exec_bin.exec_fd());
}

#[test]
fn later_config_replaces_earlier_config() {
    let j = jail(&[
        "--config",
        &fx("basic.cfg"),
        "--config",
        &fx("noproc.cfg"),
        "--",
        "/bin/true",
    ]);
    assert_eq!(j.cfg.hostname(), "NOPROC");
    assert_eq!(j.cfg.time_limit(), 600);
    assert!(j.cfg.mount.is_empty(), "{:?}", j.cfg.mount);
    assert_eq!(j.config_files.len(), 2);
}

#[test]
fn origins_track_the_last_setter() {
    let j = jail(&[
        "--config",
        &fx("tooljet-python-full.cfg"),
        "--rlimit_cpu",
        "7",
        "--",
        "/bin/true",
    ]);
    let src = j.origins.get("rlimit_as").unwrap();
    assert!(
        src.contains("tooljet-python-full.cfg") && src.ends_with(":60"),
        "{src}"
    );
    assert_eq!(
        j.origins.get("rlimit_cpu").map(String::as_str),
        Some("--rlimit_cpu")
    );
}
