//! Tier 2 "host-unprivileged": the same nsjail binary started as an
//! unprivileged user (uid/gid 65534 through `setpriv --reuid=65534
//! --regid=65534 --clear-groups` when the tests run as root; as the current
//! user when they already run unprivileged), the way many CTF hosts and
//! judges run it. Covers the default user-namespace mapping, root inside,
//! userns mounts, rlimits, the time limit, seccomp, `--run_report`, cgroup v1
//! memory delegation with an OOM kill, and the one-line errors for what an
//! unprivileged user cannot do.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const SETPRIV: &str = "/usr/bin/setpriv";

/// Who the jail is launched as.
#[derive(Clone, Copy)]
struct Who {
    uid: u32,
    gid: u32,
    /// Launch through setpriv (we are root).
    setpriv: bool,
}

fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Every directory on the way to `p` searchable by others, `p` itself
/// readable and executable by others.
fn world_exec(p: &Path) -> Result<(), String> {
    let mut cur = PathBuf::from("/");
    for c in p.parent().unwrap().components().skip(1) {
        cur.push(c);
        let m = std::fs::metadata(&cur).map_err(|e| format!("{}: {e}", cur.display()))?;
        if m.permissions().mode() & 0o001 == 0 {
            return Err(format!(
                "{} is not searchable by others (mode {:o}); build into a world-readable directory",
                cur.display(),
                m.permissions().mode() & 0o7777
            ));
        }
    }
    let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if m.permissions().mode() & 0o005 != 0o005 {
        return Err(format!(
            "{} is not readable+executable by others",
            p.display()
        ));
    }
    Ok(())
}

/// Decide how (and whether) this host can run unprivileged jails; prints
/// `SKIP <name>: <reason>` when it cannot.
fn unpriv(name: &str) -> Option<Who> {
    let why = (|| -> Result<Who, String> {
        let who = if euid() == 0 {
            if !Path::new(SETPRIV).exists() {
                return Err(format!("{SETPRIV} (util-linux) is not installed"));
            }
            world_exec(Path::new(NSJAIL))?;
            Who {
                uid: NOBODY,
                gid: NOBODY,
                setpriv: true,
            }
        } else {
            // SAFETY: no preconditions.
            let gid = unsafe { libc::getegid() };
            Who {
                uid: euid(),
                gid,
                setpriv: false,
            }
        };
        // Can this user create a user namespace at all?
        let probe = cmd_as(who, "/usr/bin/unshare", &["-U", "/bin/true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match probe {
            Ok(s) if s.success() => Ok(who),
            Ok(_) => Err("unprivileged user namespaces are disabled on this host \
                          (unshare -U failed as the unprivileged user)"
                .into()),
            Err(_) => {
                let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                    .unwrap_or_default();
                let clone = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
                    .unwrap_or_else(|_| "1".into());
                if max.trim() == "0" || clone.trim() == "0" {
                    Err("unprivileged user namespaces are disabled on this host".into())
                } else {
                    Ok(who)
                }
            }
        }
    })();
    match why {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("SKIP {name}: {e}");
            None
        }
    }
}

fn cmd_as(who: Who, prog: &str, args: &[&str]) -> Command {
    let mut c;
    if who.setpriv {
        c = Command::new(SETPRIV);
        c.args([
            &format!("--reuid={}", who.uid),
            &format!("--regid={}", who.gid),
            "--clear-groups",
            prog,
        ]);
    } else {
        c = Command::new(prog);
    }
    c.args(args).current_dir("/");
    c
}

/// Run nsjail as `who` with `args` (watchdog `limit`).
fn run_as(who: Who, args: &[&str], limit: Duration) -> Out {
    let mut c = cmd_as(who, NSJAIL, args);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    wait_out(c.spawn().expect("spawn nsjail"), start, limit)
}

/// `nsjail -q -Mo --chroot / <extra> -- /bin/sh -c <script>` as `who`.
fn sh_as(who: Who, extra: &[&str], script: &str) -> Out {
    let mut a = vec!["-q", "-Mo", "--chroot", "/"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run_as(who, &a, Duration::from_secs(30))
}

fn status_field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{name} missing in {out}"))
}

/// The fatal line of a failed run (exactly one).
fn fatal_line(o: &Out) -> String {
    let f: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("[F]")).collect();
    assert_eq!(f.len(), 1, "one fatal line expected: {o:?}");
    f[0].to_string()
}

/// A temporary directory owned by `who` (mode 0700), removed on drop.
struct OwnedDir(PathBuf);

impl OwnedDir {
    fn new(tag: &str, who: Who) -> OwnedDir {
        let p = temp_path(tag);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        if who.setpriv {
            std::os::unix::fs::chown(&p, Some(who.uid), Some(who.gid)).unwrap();
        }
        OwnedDir(p)
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn basic_jail_as_unprivileged_user() {
    let Some(who) = unpriv("basic_jail_as_unprivileged_user") else {
        return;
    };
    let o = sh_as(
        who,
        &[],
        "id -u; id -g; hostname; echo $$; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/status",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let lines: Vec<String> = o.norm().lines().take(6).map(|s| s.to_string()).collect();
    let (u, g) = (who.uid.to_string(), who.gid.to_string());
    assert_eq!(
        lines,
        [
            u.clone(),
            g.clone(),
            "NSJAIL".to_string(),
            "1".to_string(),
            format!("{u} {u} 1"),
            format!("{g} {g} 1"),
        ],
        "{o:?}"
    );
    for f in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&o.stdout, f), "0000000000000000", "{f}");
    }
    assert_eq!(status_field(&o.stdout, "NoNewPrivs"), "1");
}

#[test]
fn root_inside_maps_to_the_unprivileged_user() {
    let Some(who) = unpriv("root_inside_maps_to_the_unprivileged_user") else {
        return;
    };
    let (u, g) = (format!("0:{}", who.uid), format!("0:{}", who.gid));
    let o = sh_as(
        who,
        &["-u", &u, "-g", &g],
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; cat /proc/self/status",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    let lines: Vec<String> = o.norm().lines().take(5).map(|s| s.into()).collect();
    assert_eq!(
        lines,
        [
            "0".to_string(),
            "0".to_string(),
            format!("0 {} 1", who.uid),
            format!("0 {} 1", who.gid),
            "deny".to_string(),
        ],
        "{o:?}"
    );
    // uid 0 after execve gets the bounding set, reduced to nothing.
    for f in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&o.stdout, f), "0000000000000000", "{f}");
    }
}

#[test]
fn userns_mounts_tmpfs_readonly_bind_and_proc() {
    let Some(who) = unpriv("userns_mounts_tmpfs_readonly_bind_and_proc") else {
        return;
    };
    let mut args = vec!["-q", "-Mo", "-T", "/tmp", "--proc_path", "/proc"];
    for d in ["/bin", "/usr", "/lib", "/lib64", "/etc"] {
        if Path::new(d).exists() {
            args.extend(["-R", d]);
        }
    }
    args.extend([
        "--",
        "/bin/sh",
        "-c",
        "echo hi > /tmp/f && cat /tmp/f; \
         if touch /etc/nsjail-rootless-probe; then echo etc-writable; else echo etc-ro; fi; \
         test -r /proc/1/status && echo proc-ok; \
         awk '$2==\"/tmp\"{print $3} $2==\"/etc\"{split($4,o,\",\"); print o[1]} $2==\"/proc\"{print $3}' /proc/self/mounts",
    ]);
    let o = run_as(who, &args, Duration::from_secs(30));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), "hi\netc-ro\nproc-ok\ntmpfs\nro\nproc", "{o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    assert!(!Path::new("/etc/nsjail-rootless-probe").exists());
}

#[test]
fn rlimits_apply_unprivileged() {
    let Some(who) = unpriv("rlimits_apply_unprivileged") else {
        return;
    };
    let o = sh_as(
        who,
        &[
            "--rlimit_nofile",
            "20",
            "--rlimit_as",
            "512",
            "--rlimit_fsize",
            "2",
        ],
        "ulimit -n; ulimit -v; ulimit -f; ulimit -H -n",
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), "20\n524288\n4096\n20", "{o:?}");
}

#[test]
fn time_limit_kills_with_137() {
    let Some(who) = unpriv("time_limit_kills_with_137") else {
        return;
    };
    let d = OwnedDir::new("rootless-tl", who);
    let rep = d.0.join("r.json");
    let o = sh_as(
        who,
        &["-t", "1", "--run_report", rep.to_str().unwrap()],
        "sleep 10",
    );
    assert_eq!(o.code, Some(137), "{o:?}");
    assert!(o.elapsed < Duration::from_secs(8), "{o:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(v["status"], "time_limit", "{v}");
}

#[test]
fn seccomp_kill_and_errno_unprivileged() {
    let Some(who) = unpriv("seccomp_kill_and_errno_unprivileged") else {
        return;
    };
    let o = sh_as(
        who,
        &["--seccomp_string", "KILL { getpid } DEFAULT ALLOW"],
        "echo $$",
    );
    assert_eq!(o.code, Some(159), "{o:?}");
    let o = run_as(
        who,
        &[
            "-q",
            "-Mo",
            "--chroot",
            "/",
            "-T",
            "/tmp",
            "--seccomp_string",
            "ERRNO(1) { mkdir } DEFAULT ALLOW",
            "--",
            "/bin/sh",
            "-c",
            "mkdir /tmp/x 2>&1; echo rc=$?; touch /tmp/y && echo touch-ok",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stdout.contains("Operation not permitted"), "{o:?}");
    assert!(o.stdout.contains("rc=1"), "{o:?}");
    assert!(o.stdout.contains("touch-ok"), "{o:?}");
}

#[test]
fn run_report_in_a_directory_of_the_unprivileged_user() {
    let Some(who) = unpriv("run_report_in_a_directory_of_the_unprivileged_user") else {
        return;
    };
    let d = OwnedDir::new("rootless-report", who);
    let rep = d.0.join("report.json");
    let o = sh_as(who, &["--run_report", rep.to_str().unwrap()], "exit 7");
    assert_eq!(o.code, Some(7), "{o:?}");
    let m = std::fs::metadata(&rep).expect("report written");
    assert_eq!((m.uid(), m.gid()), (who.uid, who.gid));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(v["status"], "exited", "{v}");
    assert_eq!(v["exit_code"], 7, "{v}");
}

#[test]
fn execve_mode_unprivileged() {
    let Some(who) = unpriv("execve_mode_unprivileged") else {
        return;
    };
    let o = run_as(
        who,
        &[
            "-q",
            "-Me",
            "--chroot",
            "/",
            "-u",
            &format!("0:{}", who.uid),
            "--",
            "/bin/sh",
            "-c",
            "id -u; cat /proc/self/uid_map; hostname",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), format!("0\n0 {} 1\nNSJAIL", who.uid), "{o:?}");
}

// ---------------------------------------------------------------------------
// cgroup v1 memory delegation

/// `(mount point, own path)` of the v1 memory hierarchy.
fn own_memory_cgroup() -> Option<(PathBuf, String)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let _ = it.next()?;
        let ctl = it.next()?;
        let p = it.next()?;
        ctl.split(',').any(|c| c == "memory").then(|| p.to_string())
    })?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mnt = mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split_whitespace();
        if post.next()? != "cgroup" {
            return None;
        }
        let _src = post.next()?;
        let opts = post.next()?;
        let f: Vec<&str> = pre.split_whitespace().collect();
        // Only a mount of the hierarchy's root.
        (opts.split(',').any(|o| o == "memory") && f.get(3) == Some(&"/"))
            .then(|| PathBuf::from(f[4]))
    })?;
    Some((mnt, path))
}

/// A delegated parent: created by root, chowned to the jail user; removed
/// (with retries) on drop.
struct Delegated(PathBuf);

impl Delegated {
    fn remove(&self) -> bool {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            if let Ok(rd) = std::fs::read_dir(&self.0) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            match std::fs::remove_dir(&self.0) {
                Ok(()) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return false,
            }
        }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn cgroup_v1_memory_delegation_oom_kill() {
    let name = "cgroup_v1_memory_delegation_oom_kill";
    let Some(who) = unpriv(name) else {
        return;
    };
    if !who.setpriv {
        eprintln!("SKIP {name}: needs root to create and delegate the parent cgroup");
        return;
    }
    let Some((mnt, own)) = own_memory_cgroup() else {
        eprintln!("SKIP {name}: no cgroup v1 memory hierarchy on this host");
        return;
    };
    let rel = format!(
        "{}/nsjail-rootless-{}",
        own.trim_matches('/'),
        std::process::id()
    );
    let rel = rel.trim_start_matches('/').to_string();
    let dir = mnt.join(&rel);
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIP {name}: cannot create {}: {e}", dir.display());
        return;
    }
    let guard = Delegated(dir.clone());
    // Delegate: the directory and its control files.
    std::os::unix::fs::chown(&dir, Some(who.uid), Some(who.gid)).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        std::os::unix::fs::chown(e.path(), Some(who.uid), Some(who.gid)).unwrap();
    }
    let d = OwnedDir::new("rootless-cg", who);
    let rep = d.0.join("r.json");
    let swap: &[&str] = if dir.join("memory.memsw.limit_in_bytes").exists() {
        &["--cgroup_mem_swap_max", "0"]
    } else {
        &[]
    };
    let mut extra = vec![
        "--cgroup_mem_mount",
        mnt.to_str().unwrap(),
        "--cgroup_mem_parent",
        &rel,
        "--cgroup_mem_max",
        "33554432",
        "--run_report",
        rep.to_str().unwrap(),
    ];
    extra.extend_from_slice(swap);
    // tail keeps /dev/zero's endless "line" in memory until the OOM killer
    // ends it.
    let o = sh_as(who, &extra, "exec tail /dev/zero");
    assert_eq!(o.code, Some(137), "{o:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(v["status"], "oom", "{v}");
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(v["signal"], 9, "{v}");
    // nsjail removed its own NSJAIL.<pid> below the delegated parent.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "nsjail left cgroups behind: {left:?}");
    // A normal run in the same delegated parent is not reported as OOM.
    let o = sh_as(who, &extra, "exit 0");
    assert_eq!(o.code, Some(0), "{o:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(v["status"], "exited", "{v}");
    assert_eq!(v["oom_killed"], false, "{v}");
    assert!(guard.remove(), "could not remove {}", dir.display());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn cgroup_without_delegation_is_a_clear_error() {
    let name = "cgroup_without_delegation_is_a_clear_error";
    let Some(who) = unpriv(name) else {
        return;
    };
    let Some((mnt, own)) = own_memory_cgroup() else {
        eprintln!("SKIP {name}: no cgroup v1 memory hierarchy on this host");
        return;
    };
    let parent = mnt.join(own.trim_start_matches('/'));
    if let Ok(m) = std::fs::metadata(&parent) {
        if m.uid() == who.uid {
            eprintln!(
                "SKIP {name}: {} is already delegated to us",
                parent.display()
            );
            return;
        }
    }
    let o = sh_as(
        who,
        &[
            "--cgroup_mem_mount",
            mnt.to_str().unwrap(),
            "--cgroup_mem_parent",
            own.trim_start_matches('/'),
            "--cgroup_mem_max",
            "33554432",
        ],
        "echo ran",
    );
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("ran"), "{o:?}");
    let f = fatal_line(&o);
    assert!(f.contains("Permission denied"), "{f}");
    assert!(f.contains("delegate"), "names the fix: {f}");
}

// ---------------------------------------------------------------------------
// What an unprivileged user cannot do: one fatal line naming cause and fix.

#[test]
fn disable_clone_newuser_is_a_clear_error() {
    let Some(who) = unpriv("disable_clone_newuser_is_a_clear_error") else {
        return;
    };
    let o = sh_as(who, &["--disable_clone_newuser"], "echo ran");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("ran"), "{o:?}");
    let f = fatal_line(&o);
    assert!(f.contains("Operation not permitted"), "{f}");
    assert!(
        f.contains("user namespace") && f.contains("--disable_clone_newuser"),
        "names the cause: {f}"
    );
    assert!(f.contains("run nsjail as root"), "names the fix: {f}");
}

#[test]
fn multi_id_map_without_newuidmap_is_a_clear_error() {
    let Some(who) = unpriv("multi_id_map_without_newuidmap_is_a_clear_error") else {
        return;
    };
    let own = format!("0:{}:1", who.uid);
    for (extra, id) in [
        (vec!["-u", own.as_str(), "-u", "1:100000:10"], who.uid),
        (vec!["-u", "0:1000"], who.uid),
        (vec!["-g", "0:1000"], who.gid),
    ] {
        let o = sh_as(who, &extra, "echo ran");
        assert_eq!(o.code, Some(255), "{extra:?}: {o:?}");
        assert!(!o.stdout.contains("ran"), "{o:?}");
        let f = fatal_line(&o);
        assert!(f.contains("Operation not permitted"), "{f}");
        assert!(
            f.contains("only one id") && f.contains(&id.to_string()),
            "names the cause: {f}"
        );
        assert!(
            f.contains("newuidmap") && f.contains("/etc/subuid"),
            "names the fix: {f}"
        );
    }
}

#[test]
fn newuidmap_without_subuid_ranges_is_a_clear_error() {
    let name = "newuidmap_without_subuid_ranges_is_a_clear_error";
    let Some(who) = unpriv(name) else {
        return;
    };
    if !Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("SKIP {name}: newuidmap (package uidmap) is not installed");
        return;
    }
    let sub = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let mine = sub.lines().any(|l| {
        let f = l.split(':').next().unwrap_or("");
        f == who.uid.to_string() || (who.uid == NOBODY && f == "nobody")
    });
    if mine {
        eprintln!("SKIP {name}: /etc/subuid gives this user ranges");
        return;
    }
    let own = format!("0:{}:1", who.uid);
    let o = sh_as(who, &["-U", &own, "-U", "1:100000:10"], "echo ran");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("ran"), "{o:?}");
    let f = fatal_line(&o);
    assert!(f.contains("newuidmap"), "{f}");
    assert!(f.contains("/etc/subuid"), "names the fix: {f}");
}

#[test]
fn rlimit_above_the_hard_limit_is_a_clear_error() {
    let Some(who) = unpriv("rlimit_above_the_hard_limit_is_a_clear_error") else {
        return;
    };
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writable rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) };
    if own.rlim_max == libc::RLIM_INFINITY {
        eprintln!(
            "SKIP rlimit_above_the_hard_limit_is_a_clear_error: hard RLIMIT_NOFILE is unlimited"
        );
        return;
    }
    let want = (own.rlim_max + 1).to_string();
    let o = sh_as(who, &["--rlimit_nofile", &want], "echo ran");
    assert_eq!(o.code, Some(255), "{o:?}");
    assert!(!o.stdout.contains("ran"), "{o:?}");
    let f = fatal_line(&o);
    assert!(f.contains("RLIMIT_NOFILE"), "{f}");
    assert!(
        f.contains("hard limit") && f.contains(&own.rlim_max.to_string()),
        "names the cause: {f}"
    );
    assert!(f.contains("'max'"), "names the fix: {f}");
    // The hard limit itself ('max') works.
    let o = sh_as(who, &["--rlimit_nofile", "max"], "ulimit -n");
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.stdout.trim(), own.rlim_max.to_string(), "{o:?}");
}

#[test]
fn host_interfaces_are_a_clear_error() {
    let name = "host_interfaces_are_a_clear_error";
    let Some(who) = unpriv(name) else {
        return;
    };
    let iface = std::fs::read_dir("/sys/class/net").ok().and_then(|rd| {
        rd.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lo")
            .min()
    });
    let Some(iface) = iface else {
        eprintln!("SKIP {name}: no network interface besides lo on this host");
        return;
    };
    for flag in ["--macvlan_iface", "--iface_own"] {
        let o = sh_as(who, &[flag, &iface], "echo ran");
        assert_eq!(o.code, Some(255), "{flag}: {o:?}");
        assert!(!o.stdout.contains("ran"), "{o:?}");
        let f = fatal_line(&o);
        assert!(f.contains("Operation not permitted"), "{f}");
        assert!(
            f.contains("no CAP_NET_ADMIN") && f.contains(&format!("uid {}", who.uid)),
            "names the cause: {f}"
        );
        assert!(f.contains("run nsjail as root"), "names the fix: {f}");
    }
    // Without host interfaces the jail's own network namespace works: lo is up.
    let o = sh_as(who, &[], "cat /sys/class/net/lo/flags");
    assert_eq!(o.code, Some(0), "{o:?}");
    let flags = u32::from_str_radix(o.stdout.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up (IFF_UP): {o:?}");
}

/// The -Me warning's advice for host root: a user namespace made by -Me can
/// map only nsjail's own uid (the map is written from inside it), so root
/// gets an unprivileged program by not making one and switching uid.
#[test]
fn execve_mode_advice_for_root_works() {
    let name = "execve_mode_advice_for_root_works";
    if euid() != 0 {
        eprintln!("SKIP {name}: needs root (checks the advice given to root)");
        return;
    }
    let o = run(&[
        "-Me",
        "--chroot",
        "/",
        "-u",
        "0",
        "-g",
        "0",
        "--",
        "/bin/true",
    ]);
    let warn = o
        .stderr
        .lines()
        .find(|l| l.contains("mode EXECVE (-Me)"))
        .unwrap_or_else(|| panic!("no -Me warning: {o:?}"))
        .to_string();
    assert!(
        warn.contains("--disable_clone_newuser -u 65534 -g 65534"),
        "{warn}"
    );
    let o = run(&[
        "-q",
        "-Me",
        "--chroot",
        "/",
        "--disable_clone_newuser",
        "-u",
        "65534",
        "-g",
        "65534",
        "--",
        "/bin/sh",
        "-c",
        "id -u; id -g; grep CapEff /proc/self/status",
    ]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.norm(), "65534\n65534\nCapEff: 0000000000000000", "{o:?}");
    // What the old advice said (-u 0:65534 in -Me as root) the kernel refuses.
    let o = run(&[
        "-q",
        "-Me",
        "--chroot",
        "/",
        "-u",
        "0:65534",
        "-g",
        "0:65534",
        "--",
        "/bin/true",
    ]);
    assert_eq!(o.code, Some(255), "{o:?}");
}
