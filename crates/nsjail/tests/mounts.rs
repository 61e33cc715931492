//! The mount tree, read from inside real jails: every mount kind and field,
//! the CLI forms, the seed layout, and the three places where we
//! deliberately differ from nsjail (recursive read-only, no writes to the
//! host while building, no work dirs left behind).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Removes the listed host paths when dropped (even if the test fails).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            match std::fs::symlink_metadata(p) {
                Ok(md) if md.is_dir() => {
                    let _ = std::fs::remove_dir_all(p);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(p);
                }
                Err(_) => {}
            }
        }
    }
}

/// A host directory with a file `f` holding `hello`.
fn host_dir(tag: &str) -> PathBuf {
    let d = temp_path(tag);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("f"), "hello").unwrap();
    d
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The top-level host paths that make binaries run: `/usr` bound
/// read-only, `/bin`, `/lib`... as symlinks (merged /usr) or binds.
fn root_entries() -> (Vec<String>, Vec<String>) {
    let mut args = vec!["-R".to_string(), "/usr".to_string()];
    let mut names = vec!["usr".to_string()];
    for p in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        match std::fs::symlink_metadata(p) {
            Ok(md) if md.file_type().is_symlink() => {
                let t = std::fs::read_link(p).unwrap();
                args.push("-s".into());
                args.push(format!("{}:{p}", t.display()));
            }
            Ok(md) if md.is_dir() => {
                args.push("-R".into());
                args.push(p.into());
            }
            _ => continue,
        }
        names.push(p[1..].to_string());
    }
    (args, names)
}

/// `nsjail -Mo -q <root entries> <extra> -- /bin/sh -c <script>` (empty
/// root tmpfs, no `--chroot`).
fn jail(extra: &[&str], script: &str) -> Out {
    jail_env(extra, &[], script)
}

fn jail_env(extra: &[&str], env: &[(&str, &str)], script: &str) -> Out {
    let (root, _) = root_entries();
    let mut a: Vec<&str> = vec!["-Mo", "-q"];
    a.extend(root.iter().map(String::as_str));
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run_env(&a, env, std::time::Duration::from_secs(30))
}

/// The visible mount at `mp` in a mountinfo dump (the last one listed for
/// that mount point): (per-mount options, fs type, per-sb options).
fn mount_at(mountinfo: &str, mp: &str) -> Option<(String, String, String)> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&mp)).then(|| {
            (
                f[5].to_string(),
                f.get(sep + 1).unwrap_or(&"").to_string(),
                f.get(sep + 3).unwrap_or(&"").to_string(),
            )
        })
    })
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

/// Section `name` of a script's output, printed as `==name` then lines.
fn section(out: &str, name: &str) -> String {
    let mut on = false;
    let mut v = Vec::new();
    for l in out.lines() {
        if let Some(n) = l.strip_prefix("==") {
            on = n == name;
            continue;
        }
        if on {
            v.push(l);
        }
    }
    v.join("\n")
}

/// `df -k` size column (KiB) of the filesystem holding `p`, from a section.
fn df_kib(sec: &str) -> u64 {
    sec.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no df line in {sec:?}"))
}

#[test]
fn root_is_an_empty_read_only_tmpfs_holding_only_the_mounts() {
    if !root_or_skip("root_is_an_empty_read_only_tmpfs_holding_only_the_mounts") {
        return;
    }
    let (_, mut names) = root_entries();
    names.push("proc".into());
    names.sort();
    let script = "echo ==ls; ls -A / | sort; echo ==w; touch /newfile 2>&1; \
                  echo ==df; df -k /; echo ==mi; cat /proc/self/mountinfo";
    let o = jail(&[], script);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(section(&o.stdout, "ls").lines().collect::<Vec<_>>(), names);
    assert!(
        section(&o.stdout, "w").contains("Read-only file system"),
        "{o:?}"
    );
    assert_eq!(
        df_kib(&section(&o.stdout, "df")),
        16384,
        "16 MiB root tmpfs"
    );
    let mi = section(&o.stdout, "mi");
    let (opts, fstype, _) = mount_at(&mi, "/").expect("root in mountinfo");
    assert_eq!(fstype, "tmpfs");
    assert!(has_opt(&opts, "ro"), "{opts}");
    // the jail sees only what was mounted: no host mounts, no work dirs
    assert!(!mi.contains("oldroot") && !mi.contains("newroot"), "{mi}");
    for l in mi.lines() {
        let mp = l.split(' ').nth(4).unwrap();
        let top = mp.trim_start_matches('/').split('/').next().unwrap();
        assert!(
            mp == "/" || names.iter().any(|n| n == top),
            "unexpected mount {mp} in the jail: {mi}"
        );
    }

    // --rw: the root tmpfs stays writable
    let o = jail(&["--rw"], "touch /newfile && echo made");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout.trim(), "made");
}

#[test]
fn cli_forms_bind_ro_rw_tmpfs_mount_symlink() {
    if !root_or_skip("cli_forms_bind_ro_rw_tmpfs_mount_symlink") {
        return;
    }
    let d = host_dir("cli");
    let _c = Cleanup(vec![d.clone()]);
    let ro = format!("{}:/ro", s(&d));
    let rw = format!("{}:/rw", s(&d));
    let script = "echo ==ro; cat /ro/f; echo; (echo x > /ro/new) 2>&1 || echo denied; \
                  echo ==rw; echo y > /rw/new && cat /rw/new; \
                  echo ==link; readlink /link; cat /link; echo; \
                  echo ==t; df -k /t; echo ==m; df -k /m; \
                  echo ==tw; echo z > /t/z && echo z > /m/z && cat /t/z /m/z; \
                  echo ==mi; cat /proc/self/mountinfo";
    let o = jail(
        &[
            "-R",
            &ro,
            "-B",
            &rw,
            "-T",
            "/t",
            "-m",
            "none:/m:tmpfs:size=2097152",
            "-s",
            "/ro/f:/link",
        ],
        script,
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let out = &o.stdout;
    let ro_s = section(out, "ro");
    assert!(ro_s.starts_with("hello"), "{o:?}");
    assert!(ro_s.contains("Read-only file system"), "{o:?}");
    assert_eq!(section(out, "rw"), "y");
    // the RW bind really is the host directory
    assert_eq!(std::fs::read_to_string(d.join("new")).unwrap(), "y\n");
    assert_eq!(section(out, "link"), "/ro/f\nhello");
    assert_eq!(df_kib(&section(out, "t")), 4096, "-T is a 4 MiB tmpfs");
    assert_eq!(df_kib(&section(out, "m")), 2048, "-m options are passed");
    assert_eq!(section(out, "tw"), "z\nz");
    let mi = section(out, "mi");
    let (o_ro, _, _) = mount_at(&mi, "/ro").unwrap();
    let (o_rw, _, _) = mount_at(&mi, "/rw").unwrap();
    let (o_t, t_t, _) = mount_at(&mi, "/t").unwrap();
    let (_, t_m, _) = mount_at(&mi, "/m").unwrap();
    assert!(
        has_opt(&o_ro, "ro") && has_opt(&o_rw, "rw") && has_opt(&o_t, "rw"),
        "{mi}"
    );
    assert_eq!((t_t.as_str(), t_m.as_str()), ("tmpfs", "tmpfs"));
}

#[test]
fn config_fields_content_symlink_is_dir_flags_env_prefixes_mandatory() {
    if !root_or_skip("config_fields_content_symlink_is_dir_flags_env_prefixes_mandatory") {
        return;
    }
    let d = host_dir("cfg");
    let cfg = temp_path("cfg.cfg");
    let _c = Cleanup(vec![d.clone(), cfg.clone()]);
    let (root, _) = root_entries();
    let mut text = String::from("mode: ONCE\n");
    for pair in root.chunks(2) {
        match pair[0].as_str() {
            "-R" => text.push_str(&format!(
                "mount {{ src: \"{0}\" dst: \"{0}\" is_bind: true }}\n",
                pair[1]
            )),
            _ => {
                let (src, dst) = pair[1].split_once(':').unwrap();
                text.push_str(&format!(
                    "mount {{ src: \"{src}\" dst: \"{dst}\" is_symlink: true }}\n"
                ));
            }
        }
    }
    let ds = s(&d);
    text.push_str(&format!(
        r#"
mount {{ dst: "/c" fstype: "tmpfs" rw: true nosuid: true nodev: true noexec: true }}
mount {{ dst: "/c/content" src_content: "line1\nline2" }}
mount {{ src: "/usr/bin" dst: "/c/sym" is_symlink: true }}
mount {{ src: "/etc/hostname" dst: "/c/file" is_bind: true }}
mount {{ src: "{ds}" dst: "/c/dir" is_bind: true }}
mount {{ src: "{ds}" dst: "/c/bindflags" is_bind: true rw: true nosuid: true noexec: true }}
mount {{ src: "/etc/hostname" dst: "/c/asdir" is_bind: true is_dir: true mandatory: false }}
mount {{ src: "/nonexistent-nsjail-test" dst: "/c/missing" is_bind: true mandatory: false }}
mount {{ prefix_src_env: "NSJAIL_TEST_SRC" src: "/f" prefix_dst_env: "NSJAIL_TEST_DST" dst: "/envfile" is_bind: true }}
mount {{ prefix_src_env: "NSJAIL_TEST_SURELY_UNSET" src: "/x" dst: "/c/unset" is_bind: true mandatory: false }}
mount {{ dst: "/proc" fstype: "proc" }}
"#
    ));
    std::fs::write(&cfg, text).unwrap();
    let script = "echo ==content; cat /c/content; echo; echo ==sym; readlink /c/sym; \
         echo ==kinds; test -f /c/file && echo file; test -d /c/dir && echo dir; \
         test -d /c/asdir && echo asdir-dir; test -e /c/unset || echo unset-absent; \
         echo ==envfile; cat /c/envfile; echo; \
         echo ==noexec; printf '#!/bin/sh\\necho ran\\n' > /c/x; chmod +x /c/x; /c/x 2>&1; \
         echo ==mi; cat /proc/self/mountinfo";
    let cfgs = s(&cfg);
    let o = run_env(
        &["--config", &cfgs, "-q", "--", "/bin/sh", "-c", script],
        &[("NSJAIL_TEST_SRC", &ds), ("NSJAIL_TEST_DST", "/c")],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let out = &o.stdout;
    assert_eq!(section(out, "content"), "line1\nline2");
    assert_eq!(section(out, "sym"), "/usr/bin");
    assert_eq!(
        section(out, "kinds"),
        "file\ndir\nasdir-dir\nunset-absent",
        "{o:?}"
    );
    assert_eq!(section(out, "envfile"), "hello");
    assert!(
        section(out, "noexec").contains("Permission denied"),
        "{o:?}"
    );
    assert!(!section(out, "noexec").contains("ran"), "{o:?}");
    let mi = section(out, "mi");
    let (c, _, _) = mount_at(&mi, "/c").unwrap();
    for f in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(has_opt(&c, f), "/c lacks {f}: {c}");
    }
    let (bf, _, _) = mount_at(&mi, "/c/bindflags").unwrap();
    for f in ["rw", "nosuid", "noexec"] {
        assert!(has_opt(&bf, f), "/c/bindflags lacks {f}: {bf}");
    }
    assert!(!has_opt(&bf, "nodev"), "{bf}");
    let (content, _, _) = mount_at(&mi, "/c/content").unwrap();
    assert!(
        has_opt(&content, "ro"),
        "src_content is read-only by default: {content}"
    );
    assert!(mount_at(&mi, "/c/asdir").is_none() && mount_at(&mi, "/c/missing").is_none());
    // non-mandatory failures are logged (with the reason) and skipped
    assert!(
        o.stderr.contains("NSJAIL_TEST_SURELY_UNSET"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("/nonexistent-nsjail-test") && o.stderr.contains("mandatory: false"),
        "{}",
        o.stderr
    );
}

fn fs_available(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|f| f.lines().any(|l| l.split_whitespace().last() == Some(name)))
        .unwrap_or(false)
}

#[test]
fn pseudo_filesystems_sysfs_mqueue_devpts_overlay() {
    if !root_or_skip("pseudo_filesystems_sysfs_mqueue_devpts_overlay") {
        return;
    }
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "sysfs",
            "none:/sys:sysfs",
            "/sys",
            "test -d /sys/kernel && echo ok",
        ),
        ("mqueue", "none:/mq:mqueue", "/mq", "echo ok"),
        (
            "devpts",
            "none:/pts:devpts:newinstance,ptmxmode=0666",
            "/pts",
            "test -c /pts/ptmx && echo ok",
        ),
    ];
    for (fs, spec, mp, check) in cases {
        if !fs_available(fs) {
            eprintln!("SKIP {fs}: not in /proc/filesystems");
            continue;
        }
        let o = jail(&["-m", spec], &format!("{check}; cat /proc/self/mountinfo"));
        assert_eq!(o.code, Some(0), "{fs}: {o:?}");
        assert!(o.stdout.starts_with("ok"), "{fs}: {o:?}");
        let (_, t, _) = mount_at(&o.stdout, mp).unwrap_or_else(|| panic!("{fs}: {o:?}"));
        assert_eq!(t, fs);
    }

    if !fs_available("overlay") {
        eprintln!("SKIP overlay: not in /proc/filesystems");
        return;
    }
    let a = host_dir("ovl-a");
    let b = host_dir("ovl-b");
    let _c = Cleanup(vec![a.clone(), b.clone()]);
    std::fs::write(a.join("a"), "from-a").unwrap();
    std::fs::write(b.join("b"), "from-b").unwrap();
    let spec = format!("none:/ov:overlay:lowerdir={}:{}", s(&a), s(&b));
    let o = jail(
        &["-m", &spec],
        "cat /ov/a; echo; cat /ov/b; echo; cat /ov/f; echo; cat /proc/self/mountinfo",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let mut l = o.stdout.lines();
    assert_eq!(
        (l.next(), l.next(), l.next()),
        (Some("from-a"), Some("from-b"), Some("hello")),
        "{o:?}"
    );
    let (_, t, _) = mount_at(&o.stdout, "/ov").unwrap();
    assert_eq!(t, "overlay");
}

#[test]
fn proc_path_proc_rw_and_disable_proc() {
    if !root_or_skip("proc_path_proc_rw_and_disable_proc") {
        return;
    }
    let o = jail(&[], "cat /proc/self/mountinfo");
    assert_eq!(o.code, Some(0), "{o:?}");
    let (opts, t, _) = mount_at(&o.stdout, "/proc").unwrap();
    assert_eq!(t, "proc");
    assert!(has_opt(&opts, "ro"), "{opts}");

    let o = jail(&["--proc_rw"], "cat /proc/self/mountinfo");
    assert_eq!(o.code, Some(0), "{o:?}");
    let (opts, _, _) = mount_at(&o.stdout, "/proc").unwrap();
    assert!(has_opt(&opts, "rw"), "{opts}");

    let o = jail(
        &["--proc_path", "/myproc"],
        "test -e /proc || echo no-proc; cat /myproc/self/mountinfo",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.starts_with("no-proc"), "{o:?}");
    let (_, t, _) = mount_at(&o.stdout, "/myproc").unwrap();
    assert_eq!(t, "proc");

    let o = jail(
        &["--disable_proc"],
        "ls -A /; test -e /proc/self || echo no-proc",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.lines().all(|l| l != "proc"), "{o:?}");
    assert!(o.stdout.contains("no-proc"), "{o:?}");
}

/// The deliberate difference #1: read-only is recursive. nsjail's default
/// (legacy) mount code leaves `/dev/shm` writable under `--chroot /`.
#[test]
fn read_only_bind_is_recursive_with_every_mount_api() {
    if !root_or_skip("read_only_bind_is_recursive_with_every_mount_api") {
        return;
    }
    if mount_at(
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        "/dev/shm",
    )
    .is_none()
    {
        eprintln!(
            "SKIP read_only_bind_is_recursive_with_every_mount_api: the host has no /dev/shm mount"
        );
        return;
    }
    let probe = format!("nsjail-test-shm-{}", std::process::id());
    let host_probe = PathBuf::from("/dev/shm").join(&probe);
    let _c = Cleanup(vec![host_probe.clone()]);
    for api in ["old", "new", "auto"] {
        let script = format!(
            "echo ==shm; touch /dev/shm/{probe} 2>&1; echo ==tmp; touch /tmp/ok && echo tmp-ok; \
             echo ==mi; cat /proc/self/mountinfo"
        );
        let o = sh(&["-q", "--experimental_mnt", api, "-T", "/tmp"], &script);
        assert_eq!(o.code, Some(0), "{api}: {o:?}");
        assert!(
            section(&o.stdout, "shm").contains("Read-only file system"),
            "{api}: {o:?}"
        );
        assert!(!host_probe.exists(), "{api}: wrote to the host's /dev/shm");
        assert_eq!(section(&o.stdout, "tmp"), "tmp-ok", "{api}");
        // every visible mount except our RW /tmp is read-only
        let mi = section(&o.stdout, "mi");
        let mut points: Vec<&str> = mi.lines().filter_map(|l| l.split(' ').nth(4)).collect();
        points.dedup();
        for mp in points {
            let (opts, _, _) = mount_at(&mi, mp).unwrap();
            if mp == "/tmp" {
                assert!(has_opt(&opts, "rw"), "{api}: /tmp {opts}");
            } else {
                assert!(has_opt(&opts, "ro"), "{api}: {mp} is {opts}:\n{mi}");
            }
        }
    }
}

/// The deliberate difference #2: building the tree never writes to the host.
#[test]
fn building_the_tree_never_writes_to_the_host() {
    if !root_or_skip("building_the_tree_never_writes_to_the_host") {
        return;
    }
    let name = format!("nsjail-test-link-{}", std::process::id());
    let link = format!("/tmp/{name}");
    let top = format!("/nsjail-test-top-{}", std::process::id());
    let d = host_dir("rwbind");
    let _c = Cleanup(vec![PathBuf::from(&link), PathBuf::from(&top), d.clone()]);

    // nsjail creates this symlink on the host's /tmp
    let spec = format!("/etc/hostname:{link}");
    let o = sh(&["-q", "-s", &spec, "-T", "/tmp"], "true");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!Path::new(&link).exists() && std::fs::symlink_metadata(&link).is_err());
    let err: Vec<&str> = o.stderr.lines().filter(|l| l.contains(&link)).collect();
    assert_eq!(err.len(), 1, "{}", o.stderr);
    assert!(
        err[0].contains("mount a tmpfs at '/tmp'") && err[0].contains("create"),
        "{}",
        err[0]
    );

    // with the tmpfs first the link lands in it
    let o = sh(
        &["-q", "-T", "/tmp", "-s", &spec],
        &format!("readlink {link}"),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout.trim(), "/etc/hostname");
    assert!(std::fs::symlink_metadata(&link).is_err());

    // a new top-level directory under a read-only bind of / (with --rw too)
    for rw in [false, true] {
        let mut a = vec!["-q", "-T", &top];
        if rw {
            a.push("--rw");
        }
        let o = sh(&a, "true");
        assert_eq!(o.code, Some(255), "{o:?}");
        assert!(
            o.stderr.contains(&format!("'{top}' does not exist")),
            "{}",
            o.stderr
        );
        assert!(!Path::new(&top).exists(), "created {top} on the host");
    }

    // a point inside a read-write host bind is refused as well
    let bind = format!("{}:/data", s(&d));
    let o = jail(&["-B", &bind, "-R", "/etc/hostname:/data/sub/f"], "true");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(o.stderr.contains("'/data/sub'"), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("host '{}'", s(&d))),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "the host directory was written to"
    );

    // ... while nested points inside the jail's own tmpfs are fine
    let o = jail(
        &[
            "-T",
            "/t",
            "-R",
            "/etc/hostname:/t/a/b/f",
            "-s",
            "/t/a/b/f:/t/l/link",
        ],
        "cat /t/l/link",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(
        o.stdout.trim(),
        std::fs::read_to_string("/etc/hostname").unwrap().trim()
    );
}

fn leftovers() -> Vec<String> {
    let mut v = Vec::new();
    for dir in [
        "/",
        "/tmp",
        "/run",
        "/run/user",
        "/dev/shm",
        "/var/tmp",
        "/mnt",
    ] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("nsjail.")
                || n.starts_with("dynamic.")
                || n.starts_with(".dyn")
                || n == "oldroot"
                || n == "newroot"
            {
                v.push(format!("{dir}/{n}"));
            }
        }
    }
    v.sort();
    v
}

/// The deliberate difference #3: no work directories on the host.
#[test]
fn no_work_dirs_or_mounts_left_on_the_host() {
    if !root_or_skip("no_work_dirs_or_mounts_left_on_the_host") {
        return;
    }
    let before = leftovers();
    let mi_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for _ in 0..3 {
        let o = sh(&["-q", "-T", "/tmp"], "true");
        assert_eq!(o.code, Some(0), "{o:?}");
        let o = jail(&["-T", "/home", "--no_pivotroot"], "true");
        assert_eq!(o.code, Some(0), "{o:?}");
    }
    let seed = seed_run("print(1)");
    if let Some(o) = seed {
        assert_eq!(o.code, Some(0), "{o:?}");
    }
    assert_eq!(leftovers(), before, "work files left on the host");
    let mi_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(mi_before, mi_after, "host mount table changed");
}

#[test]
fn failed_mandatory_mount_is_one_line_with_errno_and_hint() {
    if !root_or_skip("failed_mandatory_mount_is_one_line_with_errno_and_hint") {
        return;
    }
    let missing = format!("/nonexistent-nsjail-test-{}", std::process::id());
    let spec = format!("{missing}:/x");
    let cases: [(&[&str], &str, &[&str]); 3] = [
        (
            &["-R", &spec],
            &missing,
            &[
                "-> '/x'",
                "bind",
                "MS_RDONLY|MS_BIND|MS_REC",
                "ENOENT",
                "does not exist",
            ],
        ),
        (
            &["-m", "none:/x:nosuchfs-nsjail"],
            "nosuchfs-nsjail",
            &[
                "'none' -> '/x'",
                "type: nosuchfs-nsjail",
                "ENODEV",
                "filesystem type",
            ],
        ),
        (
            &["-m", "none:/x:tmpfs:size=bogus"],
            "size=bogus",
            &["type: tmpfs", "EINVAL", "options 'size=bogus'"],
        ),
    ];
    for (args, needle, parts) in cases {
        let o = jail(args, "true");
        assert_eq!(o.code, Some(255), "{o:?}");
        let lines: Vec<&str> = o.stderr.lines().filter(|l| l.contains(needle)).collect();
        assert_eq!(lines.len(), 1, "one line about the mount: {}", o.stderr);
        for p in parts {
            assert!(lines[0].contains(p), "'{p}' missing in {}", lines[0]);
        }
    }
}

#[test]
fn no_pivotroot_warns_and_builds_the_same_tree() {
    if !root_or_skip("no_pivotroot_warns_and_builds_the_same_tree") {
        return;
    }
    let (root, _) = root_entries();
    let mut a: Vec<&str> = vec!["-Mo"];
    a.extend(root.iter().map(String::as_str));
    a.extend_from_slice(&[
        "--no_pivotroot",
        "-T",
        "/t",
        "--",
        "/bin/sh",
        "-c",
        "ls -A / | sort; touch /t/x && echo ok",
    ]);
    let o = run(&a);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        o.stderr.contains("no_pivotroot is escapable"),
        "{}",
        o.stderr
    );
    let (_, mut names) = root_entries();
    names.extend(["proc".to_string(), "t".to_string()]);
    names.sort();
    names.push("ok".to_string());
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), names);
}

fn seed_cfg() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/tooljet-python-full.cfg"
    )
    .to_string()
}

/// Run the seed config with python code; None (and a printed reason) when
/// the host lacks /usr/bin/python3.
fn seed_run(code: &str) -> Option<Out> {
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP seed layout: /usr/bin/python3 is missing");
        return None;
    }
    let cfg = seed_cfg();
    Some(run(&[
        "--config",
        &cfg,
        "--log_fd",
        "2",
        "--cgroup_mem_max",
        "0",
        "--cgroup_pids_max",
        "0",
        "--cgroup_cpu_ms_per_sec",
        "0",
        "--",
        "/usr/bin/python3",
        "-c",
        code,
    ]))
}

const SEED_PROBE: &str = r#"
import os, errno
def w(p):
    try:
        with open(p, 'w') as f:
            f.write('x')
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def size(p):
    s = os.statvfs(p)
    return s.f_blocks * s.f_frsize
print('root', ' '.join(sorted(os.listdir('/'))))
print('etc', ' '.join(sorted(os.listdir('/etc'))))
print('dev', ' '.join(sorted(os.listdir('/dev'))))
print('cwd', os.getcwd())
print('host', os.uname().nodename)
for p in ['/x', '/usr/x', '/lib/x', '/lib64/x', '/etc/x', '/etc/passwd', '/dev/x', '/home/x', '/tmp/x']:
    print('write', p, w(p))
for p in ['/', '/home', '/tmp']:
    print('size', p, size(p))
print('passwd', open('/etc/passwd').read())
print('group', open('/etc/group').read())
print('devs', len(open('/dev/zero', 'rb').read(8)), len(open('/dev/urandom', 'rb').read(8)), open('/dev/null', 'w').write('x'))
print('ldcache', os.path.getsize('/etc/ld.so.cache') > 0)
"#;

#[test]
fn seed_layout_is_exactly_as_specified() {
    if !root_or_skip("seed_layout_is_exactly_as_specified") {
        return;
    }
    let Some(o) = seed_run(SEED_PROBE) else {
        return;
    };
    assert_eq!(o.code, Some(0), "{o:?}");
    let get = |k: &str| -> Vec<String> {
        o.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(get("root"), ["dev etc home lib lib64 tmp usr"], "{o:?}");
    assert_eq!(get("etc"), ["group ld.so.cache passwd"]);
    assert_eq!(get("dev"), ["null urandom zero"]);
    assert_eq!(get("cwd"), ["/home"]);
    assert_eq!(get("host"), ["tooljet-sandbox"]);
    let writes = get("write");
    for p in [
        "/x",
        "/usr/x",
        "/lib/x",
        "/lib64/x",
        "/etc/x",
        "/etc/passwd",
        "/dev/x",
    ] {
        assert!(writes.contains(&format!("{p} EROFS")), "{p}: {writes:?}");
    }
    for p in ["/home/x", "/tmp/x"] {
        assert!(writes.contains(&format!("{p} ok")), "{p}: {writes:?}");
    }
    assert_eq!(
        get("size"),
        ["/ 16777216", "/home 52428800", "/tmp 16777216"]
    );
    assert_eq!(
        get("passwd"),
        ["sandbox:x:0:0:Sandbox User:/home:/bin/false"]
    );
    assert_eq!(get("group"), ["sandbox:x:0:"]);
    assert_eq!(get("devs"), ["8 8 1"]);
    assert_eq!(get("ldcache"), ["True"]);
}

/// A bind source is resolved as the host sees it (absolute symlinks
/// relative to the host's /), a destination as the jail will (absolute
/// symlinks relative to the new root).
#[test]
fn symlinks_in_sources_and_destinations() {
    if !root_or_skip("symlinks_in_sources_and_destinations") {
        return;
    }
    let d = host_dir("abslink");
    let _c = Cleanup(vec![d.clone()]);
    std::os::unix::fs::symlink("/etc", d.join("abs")).unwrap();
    let src = format!("{}/abs/hostname:/h", s(&d));
    let o = jail(
        &[
            "-R",
            &src,
            "-T",
            "/t",
            "-m",
            "none:/t/real:tmpfs",
            "-s",
            "/t/real:/t/alias",
            "-R",
            "/etc/hostname:/t/alias/f",
        ],
        "cat /h; cat /t/real/f",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let h = std::fs::read_to_string("/etc/hostname").unwrap();
    let h = h.trim();
    assert_eq!(o.stdout.lines().collect::<Vec<_>>(), [h, h], "{o:?}");
}

#[test]
fn example_mount_kinds_config() {
    if !root_or_skip("example_mount_kinds_config") {
        return;
    }
    if std::fs::read_link("/bin")
        .map(|t| t != Path::new("usr/bin"))
        .unwrap_or(true)
    {
        eprintln!("SKIP example_mount_kinds_config: needs a merged-/usr host (/bin -> usr/bin)");
        return;
    }
    let cfg = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/mount-kinds.cfg"
    );
    let d = host_dir("kinds");
    let _c = Cleanup(vec![d.clone()]);
    let script = "echo ==pwd; pwd; echo ==motd; cat /etc/motd; echo ==data; cat /data/f; echo; \
                  echo ==noexec; cp /bin/true /work/noexec/t; /work/noexec/t 2>&1 || echo refused; \
                  echo ==mi; cat /proc/self/mountinfo";
    let ds = s(&d);
    let o = run_env(
        &["--config", cfg, "-q", "--", "/bin/sh", "-c", script],
        &[("MOUNT_KINDS_DIR", &ds)],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(section(&o.stdout, "pwd"), "/work");
    assert_eq!(section(&o.stdout, "motd"), "hello from src_content");
    assert_eq!(section(&o.stdout, "data"), "hello");
    assert!(section(&o.stdout, "noexec").contains("refused"), "{o:?}");
    let mi = section(&o.stdout, "mi");
    for (mp, fs) in [
        ("/usr", "ext4"),
        ("/work", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/proc", "proc"),
    ] {
        let (_, t, _) = mount_at(&mi, mp).unwrap_or_else(|| panic!("{mp} missing: {mi}"));
        if mp != "/usr" {
            assert_eq!(t, fs, "{mp}");
        }
    }
    let (work, _, _) = mount_at(&mi, "/work").unwrap();
    assert!(
        has_opt(&work, "nosuid") && has_opt(&work, "nodev"),
        "{work}"
    );
}

fn entry(m: &nsjail_config::MountPt) -> nsjail_config::spec::MountEntry {
    nsjail_config::spec::MountEntry::lower(m)
        .expect("entry lowers")
        .0
}

/// The INFO line describing a mount entry names nosuid/nodev/noexec the way
/// nsjail does: in bit order, between MS_RDONLY and the bind flags. Pure:
/// no jail is started.
#[test]
fn mount_description_names_nosuid_nodev_noexec_in_bit_order() {
    let mut scratch = nsjail_config::MountPt::new();
    scratch.set_dst("/scratch".to_string());
    scratch.set_fstype("tmpfs".to_string());
    scratch.set_rw(true);
    scratch.set_nodev(true);
    scratch.set_noexec(true);
    let line = nsjail::mount::describe(&entry(&scratch));
    assert!(
        line.contains(" flags:MS_NODEV|MS_NOEXEC type:'tmpfs' "),
        "{line}"
    );

    let mut tools = nsjail_config::MountPt::new();
    tools.set_src("/usr/bin".to_string());
    tools.set_dst("/tools".to_string());
    tools.set_is_bind(true);
    tools.set_nosuid(true);
    tools.set_noexec(true);
    let line = nsjail::mount::describe(&entry(&tools));
    assert!(
        line.contains(" flags:MS_RDONLY|MS_NOSUID|MS_NOEXEC|MS_BIND|MS_REC|MS_PRIVATE "),
        "{line}"
    );

    // Without any of them the line is unchanged.
    tools.set_nosuid(false);
    tools.set_noexec(false);
    let line = nsjail::mount::describe(&entry(&tools));
    assert!(
        line.contains(" flags:MS_RDONLY|MS_BIND|MS_REC|MS_PRIVATE "),
        "{line}"
    );
}
