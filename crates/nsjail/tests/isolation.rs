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
    let o = sh(
        &[
            "-q",
            "--rlimit_nofile",
            "77",
            "--rlimit_as",
            "inf",
            "--rlimit_stack",
            "16",
        ],
        "ulimit -n; ulimit -v; ulimit -s",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines,
        ["77", "unlimited", "16384"],
        "16 MiB stack in KiB: {o:?}"
    );
}

/// `soft` and `hard` (and the default SOFT type) take nsjail's own soft or
/// hard limit. nsjail is started with its soft limits lowered below the
/// hard ones, so taking the wrong one shows.
#[test]
fn rlimit_soft_and_hard_take_nsjails_own_limits() {
    if !root_or_skip("rlimit_soft_and_hard_take_nsjails_own_limits") {
        return;
    }
    let get = |r| {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writable rlimit struct.
        unsafe { libc::getrlimit(r, &mut l) };
        l.rlim_max
    };
    // A soft value strictly below the hard limit, in the shell's units.
    let below = |hard: libc::rlim_t, unit: libc::rlim_t, want: libc::rlim_t| {
        if hard == libc::RLIM_INFINITY {
            Some(want)
        } else {
            (hard / unit >= 2).then(|| (hard / unit - 1).min(want))
        }
    };
    let shown = |v: libc::rlim_t, unit: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            (v / unit).to_string()
        }
    };
    let (cpu_h, nproc_h, fsize_h) = (
        get(libc::RLIMIT_CPU),
        get(libc::RLIMIT_NPROC),
        get(libc::RLIMIT_FSIZE),
    );
    // dash's ulimit: -t seconds, -p processes, -f 512-byte blocks.
    let (Some(cpu_s), Some(nproc_s), Some(fsize_s)) = (
        below(cpu_h, 1, 3000),
        below(nproc_h, 1, 5000),
        below(fsize_h, 512, 100_000),
    ) else {
        skip(format!(
            "a hard limit too low to set a soft one below it (cpu {cpu_h}, nproc {nproc_h}, fsize {fsize_h})"
        ));
        return;
    };
    let lower = format!(
        "ulimit -St {cpu_s} && ulimit -Sp {nproc_s} && ulimit -Sf {fsize_s} && exec \"$0\" \"$@\""
    );
    let child = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            &lower,
            NSJAIL,
            "-Mo",
            "--chroot",
            "/",
            "-q",
            "--rlimit_cpu",
            "soft",
            "--rlimit_fsize",
            "hard",
            "--",
            "/bin/sh",
            "-c",
            "ulimit -t; ulimit -p; ulimit -f",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let o = wait_out(
        child,
        std::time::Instant::now(),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let want = [cpu_s.to_string(), nproc_s.to_string(), shown(fsize_h, 512)];
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines, want,
        "cpu soft, nproc soft (the default type), fsize hard: {o:?}"
    );
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
    // The C++ nsjail's work dirs (left by any earlier C++ run, which is why
    // this compares before/after instead of asserting absence), plus what
    // a pivot_root dance could leave, plus the directories they live in.
    let watched = [
        "/run/user",
        "/run/user/nsjail.0.root",
        "/run/user/nsjail.0.tmp",
        "/tmp/oldroot",
        "/tmp/newroot",
    ];
    let snapshot = || -> Vec<(String, Option<Vec<String>>)> {
        watched
            .iter()
            .map(|p| {
                let entries = std::fs::read_dir(p).ok().map(|rd| {
                    let mut v: Vec<String> = rd
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    v.sort();
                    v
                });
                let exists = std::path::Path::new(p).symlink_metadata().is_ok();
                (format!("{p} exists={exists}"), entries)
            })
            .collect()
    };
    let mounts = || {
        let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            // network namespaces other tests (or other users of this
            // host) create and delete meanwhile
            .filter(|l| {
                let mp = l.split(' ').nth(4).unwrap_or("");
                !mp.starts_with("/run/netns/") && !mp.starts_with("/var/run/netns/")
            })
            // the mount id and parent id columns are not stable across a
            // remount; the rest (root, mount point, options, fs) is
            .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    };
    let (files_before, mounts_before) = (snapshot(), mounts());
    let o = sh(&["-q"], "true");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(
        snapshot(),
        files_before,
        "work dirs created or changed on the host"
    );
    assert_eq!(mounts(), mounts_before, "the host's mount table changed");
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
    // SAFETY: a zeroed cpu_set_t is valid for sched_getaffinity to fill.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: our own affinity into a correctly sized set.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(
        rc,
        0,
        "sched_getaffinity: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: CPU_COUNT reads the set just filled.
    let ours = unsafe { libc::CPU_COUNT(&set) };
    if ours < 2 {
        skip(format!(
            "this process may run on {ours} CPU: --max_cpus 1 would change nothing to observe"
        ));
        return;
    }
    let o = sh(
        &["-q", "--max_cpus", "1"],
        "grep Cpus_allowed_list /proc/self/status; nproc",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let list = o
        .stdout
        .lines()
        .next()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !list.contains(',') && !list.contains('-'),
        "one CPU: {list}"
    );
    assert_eq!(
        o.stdout.lines().nth(1),
        Some("1"),
        "nproc in the jail: {o:?}"
    );
}

#[test]
fn execute_fd_and_no_pivotroot() {
    if !root_or_skip("execute_fd_and_no_pivotroot") {
        return;
    }
    // A host program that does not exist inside the jail: a copy of /bin/sh
    // in a directory the jail sees covered by an empty tmpfs. Opened before
    // namespacing (--execute_fd) it runs; by path it cannot.
    let dir = temp_path("execute-fd");
    std::fs::create_dir(&dir).unwrap();
    let prog = dir.join("host-only-sh");
    std::fs::copy("/bin/sh", &prog).unwrap();
    let (d, p) = (dir.to_str().unwrap(), prog.to_str().unwrap());
    let jail = |extra: &[&str]| {
        let mut a = vec!["-Mo", "--chroot", "/", "-q", "-T", d];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--", p, "-c", "test ! -e \"$0\" && exit 6"]);
        run(&a)
    };
    let by_fd = jail(&["--execute_fd"]);
    let by_path = jail(&[]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        by_fd.code,
        Some(6),
        "ran from the fd, absent inside: {by_fd:?}"
    );
    assert_eq!(by_path.code, Some(255), "{by_path:?}");
    assert!(
        by_path.stderr.contains("No such file or directory"),
        "without --execute_fd the path is looked up inside the jail: {by_path:?}"
    );
    let o = sh(&["-q", "--no_pivotroot"], "test -d /proc/1 && echo ok");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout, "ok\n");
}
