//! What a jailed program sees: ids, maps, namespaces, capabilities,
//! no_new_privs, rlimits, hostname, environment, fds, nice, filesystem.

mod common;

use common::*;

fn status_field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{name} missing in {out}"))
}

#[test]
fn default_jail_has_no_caps_and_no_new_privs() {
    if !root_or_skip("default_jail_has_no_caps_and_no_new_privs") {
        return;
    }
    let o = sh(&["-q"], "cat /proc/self/status");
    assert_eq!(o.code, Some(0), "{o:?}");
    for f in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&o.stdout, f), "0000000000000000", "{f}");
    }
    assert_eq!(status_field(&o.stdout, "NoNewPrivs"), "1");
}

#[test]
fn cap_flag_keeps_only_that_capability() {
    if !root_or_skip("cap_flag_keeps_only_that_capability") {
        return;
    }
    let o = sh(&["-q", "--cap", "CAP_NET_RAW"], "cat /proc/self/status");
    assert_eq!(o.code, Some(0), "{o:?}");
    // CAP_NET_RAW = 13
    assert_eq!(status_field(&o.stdout, "CapBnd"), "0000000000002000");
    assert_eq!(status_field(&o.stdout, "CapAmb"), "0000000000002000");
    assert_eq!(status_field(&o.stdout, "CapEff"), "0000000000002000");
}

#[test]
fn keep_caps_and_disable_no_new_privs() {
    if !root_or_skip("keep_caps_and_disable_no_new_privs") {
        return;
    }
    let o = sh(
        &["-q", "--keep_caps", "--disable_no_new_privs"],
        "cat /proc/self/status",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let eff = u64::from_str_radix(&status_field(&o.stdout, "CapEff"), 16).unwrap();
    let amb = u64::from_str_radix(&status_field(&o.stdout, "CapAmb"), 16).unwrap();
    assert!(eff & (1 << 21) != 0, "CAP_SYS_ADMIN kept: {eff:#x}");
    assert_eq!(amb, eff, "every permitted cap raised into the ambient set");
    assert_eq!(status_field(&o.stdout, "NoNewPrivs"), "0");
}

#[test]
fn default_rlimits_use_nsjail_units() {
    if !root_or_skip("default_rlimits_use_nsjail_units") {
        return;
    }
    let o = sh(
        &["-q"],
        "ulimit -n; ulimit -t; ulimit -f; ulimit -v; ulimit -c; ulimit -H -n",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    // nofile 32, cpu 600 s, fsize 1 MiB = 2048 blocks of 512, AS 4096 MiB in KiB, core 0
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines, ["32", "600", "2048", "4194304", "0", "32"], "{o:?}");
}

#[test]
fn rlimit_flags_value_inf_and_soft() {
    if !root_or_skip("rlimit_flags_value_inf_and_soft") {
        return;
    }
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writable rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut own) };
    let o = sh(
        &[
            "-q",
            "--rlimit_nofile",
            "77",
            "--rlimit_as",
            "inf",
            "--rlimit_stack",
            "16",
            "--rlimit_cpu",
            "soft",
        ],
        "ulimit -n; ulimit -v; ulimit -s; ulimit -p; ulimit -t",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "77");
    assert_eq!(lines[1], "unlimited");
    assert_eq!(lines[2], "16384", "16 MiB stack in KiB");
    let nproc = if own.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        own.rlim_cur.to_string()
    };
    assert_eq!(lines[3], nproc, "nproc inherited (type SOFT by default)");
    let mut cpu = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writable rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut cpu) };
    let want = if cpu.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        cpu.rlim_cur.to_string()
    };
    assert_eq!(lines[4], want, "--rlimit_cpu soft = our soft limit");
}

#[test]
fn ids_and_maps_default_and_custom() {
    if !root_or_skip("ids_and_maps_default_and_custom") {
        return;
    }
    let o = sh(
        &["-q"],
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), "0\n0\n0 0 1\n0 0 1");

    let o = sh(
        &["-q", "-u", "99999", "-g", "4242:65534"],
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    // As root, setgroups is not denied (nsjail writes the maps with CAP_SETGID).
    assert_eq!(o.norm(), "99999\n4242\n99999 0 1\n4242 65534 1\nallow");
}

#[test]
fn newuidmap_ranges() {
    if !root_or_skip("newuidmap_ranges") {
        return;
    }
    if !std::path::Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("SKIP newuidmap_ranges: /usr/bin/newuidmap missing (apt-get install uidmap)");
        return;
    }
    // Mapping one's own id needs no /etc/subuid entry.
    let o = sh(
        &["-q", "-U", "0:0:1", "-G", "0:0:1"],
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), "0 0 1\n0 0 1\n0");
}

#[test]
fn namespaces_are_new_unless_disabled() {
    if !root_or_skip("namespaces_are_new_unless_disabled") {
        return;
    }
    let kinds = ["net", "uts", "ipc", "pid", "mnt", "user", "cgroup"];
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k};"))
        .collect();
    let host: Vec<String> = kinds
        .iter()
        .map(|k| {
            std::fs::read_link(format!("/proc/self/ns/{k}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    let o = sh(&["-q"], &script);
    assert_eq!(o.code, Some(0), "{o:?}");
    let inside: Vec<&str> = o.stdout.lines().collect();
    for (i, k) in kinds.iter().enumerate() {
        assert_ne!(inside[i], host[i], "{k} namespace should be new");
    }
    let o = sh(&["-q", "-N", "--disable_clone_newuts"], &script);
    assert_eq!(o.code, Some(0), "{o:?}");
    let inside: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(inside[0], host[0], "net shared with -N");
    assert_eq!(inside[1], host[1], "uts shared");
    assert_ne!(inside[4], host[4], "mnt still new");
}

#[test]
fn pid_one_and_own_proc() {
    if !root_or_skip("pid_one_and_own_proc") {
        return;
    }
    let o = sh(
        &["-q"],
        "echo $$; ls /proc | grep -c '^[0-9]'; cat /proc/1/comm",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "1");
    let n: u32 = l[1].parse().unwrap();
    assert!(n <= 3, "only the jail's processes in /proc, got {n}");
    assert_eq!(l[2], "sh");
}

#[test]
fn hostname_default_and_flag() {
    if !root_or_skip("hostname_default_and_flag") {
        return;
    }
    let o = sh(&["-q"], "cat /proc/sys/kernel/hostname");
    assert_eq!(o.stdout.trim(), "NSJAIL", "{o:?}");
    let o = sh(&["-q", "-H", "jailhost"], "cat /proc/sys/kernel/hostname");
    assert_eq!(o.stdout.trim(), "jailhost", "{o:?}");
}

#[test]
fn loopback_up_unless_iface_no_lo() {
    if !root_or_skip("loopback_up_unless_iface_no_lo") {
        return;
    }
    // An up `lo` carries ::1; /proc/self/net shows the jail's own netns.
    let o = sh(
        &["-q"],
        "cat /proc/self/net/if_inet6 2>/dev/null | grep -c lo; grep -c lo /proc/self/net/dev",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "1", "lo has ::1 when up: {o:?}");
    let o = sh(
        &["-q", "--iface_no_lo"],
        "cat /proc/self/net/if_inet6 2>/dev/null | grep -c lo; true",
    );
    assert_eq!(o.stdout.trim(), "0", "lo stays down: {o:?}");
}

#[test]
fn environment_is_clean_with_envars() {
    if !root_or_skip("environment_is_clean_with_envars") {
        return;
    }
    let args = [
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "-E",
        "FOO=bar",
        "-E",
        "NSJ_COPY",
        "--",
        "/usr/bin/env",
    ];
    let o = run_env(
        &args,
        &[("NSJ_COPY", "copied"), ("NSJ_OTHER", "other")],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let mut lines: Vec<&str> = o.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["FOO=bar", "NSJ_COPY=copied"]);

    let mut keep = args.to_vec();
    keep.insert(3, "-e");
    let o = run_env(
        &keep,
        &[("NSJ_OTHER", "other")],
        std::time::Duration::from_secs(30),
    );
    assert!(o.stdout.lines().any(|l| l == "NSJ_OTHER=other"), "{o:?}");
    assert!(o.stdout.lines().any(|l| l == "FOO=bar"), "{o:?}");
}

#[test]
fn only_stdio_and_pass_fd_survive() {
    if !root_or_skip("only_stdio_and_pass_fd_survive") {
        return;
    }
    let script = format!(
        "exec 5</etc/hostname 7</etc/hostname; exec {NSJAIL} -Mo --chroot / -q --pass_fd 7 -- /bin/sh -c 'ls /proc/self/fd'"
    );
    let start = std::time::Instant::now();
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_out(child, start, std::time::Duration::from_secs(30));
    assert_eq!(o.code, Some(0), "{o:?}");
    let fds: Vec<u32> = o
        .stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(fds.contains(&7), "pass_fd 7 kept: {fds:?}");
    assert!(!fds.contains(&5), "fd 5 closed: {fds:?}");
    // 0,1,2,7 and ls's own directory fd
    assert!(fds.len() <= 5, "{fds:?}");
}

#[test]
fn nice_level_default_19_and_flag() {
    if !root_or_skip("nice_level_default_19_and_flag") {
        return;
    }
    let field = |o: &Out| {
        o.stdout
            .split_whitespace()
            .nth(18)
            .unwrap_or("?")
            .to_string()
    };
    let o = sh(&["-q"], "cat /proc/self/stat");
    assert_eq!(field(&o), "19", "{o:?}");
    let o = sh(&["-q", "--nice_level", "3"], "cat /proc/self/stat");
    assert_eq!(field(&o), "3", "{o:?}");
}

#[test]
fn chroot_root_is_read_only_and_cwd_applies() {
    if !root_or_skip("chroot_root_is_read_only_and_cwd_applies") {
        return;
    }
    let probe = "/etc/.nsjail-rw-probe";
    let o = sh(
        &["-q", "-D", "/etc"],
        &format!("pwd; touch {probe} 2>/dev/null && echo wrote || echo ro"),
    );
    let _ = std::fs::remove_file(probe);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "/etc\nro\n");
}

#[test]
fn chroot_dir_with_pivot_root_and_without_mount_ns() {
    if !root_or_skip("chroot_dir_with_pivot_root_and_without_mount_ns") {
        return;
    }
    // /usr is a usable root on a merged-/usr system: /bin/sh and the loader
    // resolve inside it.
    if !std::path::Path::new("/usr/bin/sh").exists() || !std::path::Path::new("/usr/lib64").is_dir()
    {
        eprintln!("SKIP chroot_dir_with_pivot_root_and_without_mount_ns: needs a merged /usr");
        return;
    }
    for extra in [&[][..], &["--disable_clone_newns"][..]] {
        let mut a = vec!["-Mo", "--chroot", "/usr", "-q", "--disable_proc"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "--",
            "/bin/sh",
            "-c",
            "test -d /share && test ! -d /usr && echo inside",
        ]);
        let o = run(&a);
        assert_eq!(o.code, Some(0), "{extra:?}: {o:?}");
        assert_eq!(o.stdout, "inside\n", "{extra:?}");
    }
}

#[test]
fn nothing_left_on_the_host() {
    if !root_or_skip("nothing_left_on_the_host") {
        return;
    }
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let o = sh(&["-q"], "true");
    assert_eq!(o.code, Some(0), "{o:?}");
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(before.lines().count(), after.lines().count());
    for p in ["/run/user/nsjail.0.root", "/tmp/oldroot", "/tmp/newroot"] {
        assert!(!std::path::Path::new(p).exists(), "{p} left behind");
    }
}

#[test]
fn silent_and_stderr_to_null() {
    if !root_or_skip("silent_and_stderr_to_null") {
        return;
    }
    let o = sh(&["-Q", "--stderr_to_null"], "echo out; echo err >&2");
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("out\n", ""),
        "{o:?}"
    );
    let o = sh(&["-Q", "--silent"], "echo out; echo err >&2");
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("", ""), "{o:?}");
}

#[test]
fn oom_score_adj_personality_and_setsid() {
    if !root_or_skip("oom_score_adj_personality_and_setsid") {
        return;
    }
    let o = sh(
        &["-q", "--oom_score_adj", "500", "--persona_addr_no_randomize"],
        "cat /proc/self/oom_score_adj; grep -c . /proc/self/personality >/dev/null; cat /proc/self/personality; cut -d' ' -f6 /proc/self/stat",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let l: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(l[0], "500");
    assert_eq!(l[1], "00040000", "ADDR_NO_RANDOMIZE");
    assert_eq!(l[2], "1", "session leader (setsid): sid = own pid 1");
    let o = sh(&["-q", "--skip_setsid"], "cut -d' ' -f6 /proc/self/stat");
    assert_eq!(
        o.stdout.trim(),
        "0",
        "session of a process outside the pid namespace: {o:?}"
    );
}

#[test]
fn max_cpus_restricts_affinity() {
    if !root_or_skip("max_cpus_restricts_affinity") {
        return;
    }
    let o = sh(
        &["-q", "--max_cpus", "1"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let list = o.stdout.split(':').nth(1).unwrap().trim().to_string();
    assert!(
        !list.contains(',') && !list.contains('-'),
        "one CPU: {list}"
    );
}

#[test]
fn execute_fd_and_no_pivotroot() {
    if !root_or_skip("execute_fd_and_no_pivotroot") {
        return;
    }
    let o = run(&[
        "-Mo",
        "--chroot",
        "/",
        "-q",
        "--execute_fd",
        "--",
        "/bin/sh",
        "-c",
        "exit 6",
    ]);
    assert_eq!(o.code, Some(6), "{o:?}");
    let o = sh(&["-q", "--no_pivotroot"], "test -d /proc/1 && echo ok");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "ok\n");
}
