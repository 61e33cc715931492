//! Parsers for the text files the cgroup code reads: `/proc/self/cgroup`,
//! `/proc/self/mountinfo`, flat-keyed control files (`memory.events`,
//! `cpu.stat`, `memory.oom_control`), single values and pid lists.

use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for the unified v2 hierarchy).
    pub hierarchy: u32,
    /// Controllers bound to the hierarchy (`name=systemd` style names kept as is; empty for v2).
    pub controllers: Vec<String>,
    /// Path of the process's cgroup, relative to the hierarchy root, starting with `/`.
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`; malformed lines are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let hierarchy = it.next()?.trim().parse().ok()?;
            let ctl = it.next()?;
            let path = it.next()?.to_string();
            let controllers = if ctl.is_empty() {
                Vec::new()
            } else {
                ctl.split(',').map(str::to_string).collect()
            };
            Some(ProcCgroup {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// The cgroup path of `controller` (v1), or of the v2 hierarchy when `controller` is `None`.
pub fn own_cgroup_path(text: &str, controller: Option<&str>) -> Option<String> {
    parse_proc_cgroup(text)
        .into_iter()
        .find(|c| match controller {
            Some(name) => c.controllers.iter().any(|x| x == name),
            None => c.hierarchy == 0 && c.controllers.is_empty(),
        })
        .map(|c| c.path)
}

/// One line of `/proc/self/mountinfo` (only the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Path inside the filesystem that is mounted (field 4).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// Filesystem type (`cgroup`, `cgroup2`, `tmpfs`, ...).
    pub fstype: String,
    /// Super-block options (`rw,memory` for a v1 memory hierarchy).
    pub super_opts: Vec<String>,
}

impl MountEntry {
    /// A v1 hierarchy carrying `controller`.
    pub fn is_v1_with(&self, controller: &str) -> bool {
        self.fstype == "cgroup" && self.super_opts.iter().any(|o| o == controller)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, etc.).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            if pre.len() < 6 {
                return None;
            }
            let mut post = post.split(' ');
            let fstype = post.next()?.to_string();
            let _source = post.next()?;
            let super_opts = post
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::to_string)
                .collect();
            Some(MountEntry {
                root: unescape(pre[3]),
                mount_point: PathBuf::from(unescape(pre[4])),
                fstype,
                super_opts,
            })
        })
        .collect()
}

/// The mount that contains `path` (longest mount point that is a path prefix;
/// the last such mount wins, as the last one mounted hides earlier ones).
pub fn mount_of<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let mut best: Option<&MountEntry> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point) {
            let better = match best {
                None => true,
                Some(b) => m.mount_point.components().count() >= b.mount_point.components().count(),
            };
            if better {
                best = Some(m);
            }
        }
    }
    best
}

/// The directory of this process's own cgroup for a v1 `controller` (or v2
/// when `None`), as seen through the mount containing `mount_path`.
pub fn own_cgroup_dir(
    proc_self_cgroup: &str,
    mounts: &[MountEntry],
    mount_path: &Path,
    controller: Option<&str>,
) -> Option<PathBuf> {
    let own = own_cgroup_path(proc_self_cgroup, controller)?;
    let m = mount_of(mounts, mount_path)?;
    let rel = Path::new(&own).strip_prefix(&m.root).ok()?;
    Some(m.mount_point.join(rel))
}

/// Value of `key` in a flat-keyed file (`key value` per line).
pub fn keyed_u64(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next()? == key {
            it.next()?.parse().ok()
        } else {
            None
        }
    })
}

/// A file holding one number (`max` and junk give `None`).
pub fn single_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `cgroup.procs`/`tasks`: one pid per line.
pub fn pid_list(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `cgroup.controllers`/`cgroup.subtree_control`: space-separated names.
pub fn controller_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/77ab\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn proc_cgroup_finds_v1_controller_and_v2() {
        assert_eq!(
            own_cgroup_path(HOST_CGROUP, Some("memory")).as_deref(),
            Some("/process_api/77ab")
        );
        assert_eq!(
            own_cgroup_path(HOST_CGROUP, Some("pids")).as_deref(),
            Some("/")
        );
        assert_eq!(own_cgroup_path(HOST_CGROUP, None).as_deref(), Some("/"));
        assert_eq!(own_cgroup_path(HOST_CGROUP, Some("net_cls")), None);
        assert_eq!(own_cgroup_path(HOST_CGROUP, Some("systemd")), None);
        let co = "5:cpu,cpuacct:/a/b\n0::/user.slice/x.scope\n";
        assert_eq!(
            own_cgroup_path(co, Some("cpuacct")).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            own_cgroup_path(co, None).as_deref(),
            Some("/user.slice/x.scope")
        );
    }

    const MOUNTINFO: &str = "\
23 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /process_api /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
50 1 0:40 / /mnt/with\\040space rw - tmpfs none rw
";

    #[test]
    fn mountinfo_parses_fields_and_escapes() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 6);
        assert_eq!(
            m[2].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(m[2].is_v1_with("cpuacct"));
        assert!(m[2].is_v1_with("cpu"));
        assert!(!m[2].is_v1_with("memory"));
        assert_eq!(m[3].root, "/process_api");
        assert_eq!(m[4].fstype, "cgroup2");
        assert_eq!(m[5].mount_point, PathBuf::from("/mnt/with space"));
    }

    #[test]
    fn mount_of_picks_longest_prefix() {
        let m = parse_mountinfo(MOUNTINFO);
        let e = mount_of(&m, Path::new("/sys/fs/cgroup/memory/NSJAIL")).unwrap();
        assert!(e.is_v1_with("memory"));
        let e = mount_of(&m, Path::new("/sys/fs/cgroup/net_cls")).unwrap();
        assert_eq!(e.fstype, "tmpfs");
        // component-wise prefix: "memoryx" is not under "memory"
        let e = mount_of(&m, Path::new("/sys/fs/cgroup/memoryx")).unwrap();
        assert_eq!(e.fstype, "tmpfs");
    }

    #[test]
    fn own_dir_strips_the_mount_root() {
        let m = parse_mountinfo(MOUNTINFO);
        let cg = "4:memory:/process_api/77ab\n0::/\n";
        assert_eq!(
            own_cgroup_dir(cg, &m, Path::new("/sys/fs/cgroup/memory"), Some("memory")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/77ab"))
        );
        assert_eq!(
            own_cgroup_dir(cg, &m, Path::new("/sys/fs/cgroup/unified"), None),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn keyed_and_single_values() {
        let events = "low 0\nhigh 0\nmax 35\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_u64(events, "oom_kill"), Some(1));
        assert_eq!(keyed_u64(events, "oom"), Some(1));
        assert_eq!(keyed_u64(events, "max"), Some(35));
        assert_eq!(keyed_u64(events, "missing"), None);
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_u64(oom_control, "oom_kill"), Some(3));
        assert_eq!(single_u64("67108864\n"), Some(67108864));
        assert_eq!(single_u64("max\n"), None);
        assert_eq!(pid_list("1\n22\n333\n"), vec![1, 22, 333]);
        assert_eq!(
            controller_list("cpu memory pids\n"),
            ["cpu", "memory", "pids"]
        );
        assert!(controller_list("\n").is_empty());
    }
}
