//! Per-mount attributes (read-only, nosuid, nodev, noexec), applied to a
//! mount and — for binds — to every mount below it, so that read-only
//! really is read-only (nsjail's legacy code only remounts the top mount).
//!
//! Two strategies, chosen by `--experimental_mnt`:
//! * `old` (nsjail's default; ours is `auto`): mount(2) only — `MS_REMOUNT|MS_BIND` on the mount and
//!   on each of its submounts, found in `/proc/self/mountinfo`, keeping the
//!   flags each one already has (they may be locked in a user namespace);
//! * `new` / `auto`: one `mount_setattr(AT_RECURSIVE)`; if the kernel lacks
//!   it (or refuses), the `old` way is used instead, so `new` never fails
//!   where `old` works.

use std::io;

use nsjail_config::MountApi;

use crate::sys::{self, SysError};

/// How attributes are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    /// MS_REMOUNT on each mount.
    Remount,
    /// mount_setattr(2), falling back to `Remount`.
    SetAttr,
}

impl Strategy {
    pub(super) fn of(api: MountApi) -> Strategy {
        match api {
            MountApi::Old => Strategy::Remount,
            MountApi::New | MountApi::Auto => Strategy::SetAttr,
        }
    }
}

/// The per-mount MS_* flags mount_setattr can set.
const EXTRA: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

fn to_attr(ms: libc::c_ulong) -> u64 {
    let mut a = 0;
    for (m, at) in [
        (libc::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
    ] {
        if ms & m != 0 {
            a |= at;
        }
    }
    a
}

/// Undo `/proc/self/mountinfo`'s octal escapes (`\040` for a space...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A failed attribute change: the path and the call's error.
#[derive(Debug)]
pub(super) struct AttrError {
    /// Which mount (build-namespace path).
    pub path: String,
    /// The failure.
    pub source: io::Error,
    /// The call, for the message.
    pub call: &'static str,
}

impl From<SysError> for AttrError {
    fn from(e: SysError) -> Self {
        AttrError {
            path: e.what.clone(),
            call: e.call,
            source: e.source,
        }
    }
}

/// Where the attributes go and what they are.
pub(super) struct Attrs<'a> {
    /// The mount (build-namespace path).
    pub target: &'a str,
    /// Also every mount below it.
    pub recursive: bool,
    /// Make read-only (else leave RO/RW as it is).
    pub ro: bool,
    /// Extra MS_NOSUID/MS_NODEV/MS_NOEXEC.
    pub extra: libc::c_ulong,
}

/// Apply `a` with `strategy`; `submounts` lists the mount points at and
/// below `a.target` (only called by the remount strategy, only when
/// recursive).
pub(super) fn apply(
    a: &Attrs,
    strategy: Strategy,
    submounts: &dyn Fn() -> io::Result<Vec<String>>,
) -> Result<(), AttrError> {
    let set = if a.ro { libc::MS_RDONLY } else { 0 } | (a.extra & EXTRA);
    if set == 0 {
        return Ok(());
    }
    if strategy == Strategy::SetAttr {
        match sys::mount_setattr(a.target, a.recursive, to_attr(set), 0) {
            Ok(()) => return Ok(()),
            Err(e) => log::debug!("{e}; falling back to MS_REMOUNT"),
        }
    }
    let points = if a.recursive {
        submounts().map_err(|source| AttrError {
            path: "/proc/self/mountinfo".to_string(),
            source,
            call: "reading the mount table (needed to reach the submounts; mount /proc on the host or use --experimental_mnt new)",
        })?
    } else {
        vec![a.target.to_string()]
    };
    for p in points {
        let keep = sys::statvfs_flags(&p)?;
        sys::mount(
            None,
            &p,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | keep | set,
            None,
        )?;
    }
    Ok(())
}

/// The mount points of a mountinfo dump, in order, unescaped.
pub(super) fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// The mounts a recursive bind of the host path `src` (resolved, no
/// symlinks) at `target` carries: `target` itself and, for each host mount
/// point below `src`, the same path below `target`.
pub(super) fn bind_submounts(host_points: &[String], src: &str, target: &str) -> Vec<String> {
    let src = src.trim_end_matches('/');
    let prefix = format!("{src}/");
    let mut v = vec![target.to_string()];
    for mp in host_points {
        if let Some(rest) = mp.strip_prefix(&prefix) {
            let p = format!("{}/{rest}", target.trim_end_matches('/'));
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    v
}

/// Make the top mount at `target` writable if it is read-only (a RW bind of
/// a read-only source, as nsjail's final remount does).
pub(super) fn clear_ro(target: &str, strategy: Strategy) -> Result<(), AttrError> {
    let cur = sys::statvfs_flags(target)?;
    if cur & libc::MS_RDONLY == 0 {
        return Ok(());
    }
    if strategy == Strategy::SetAttr
        && sys::mount_setattr(target, false, 0, sys::MOUNT_ATTR_RDONLY).is_ok()
    {
        return Ok(());
    }
    sys::mount(
        None,
        target,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | (cur & !libc::MS_RDONLY),
        None,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_points_are_unescaped() {
        let mi = "101 90 0:50 / /newroot rw - tmpfs tmpfs rw\n105 102 0:60 / /newroot/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(mount_points(mi), ["/newroot", "/newroot/a b"]);
        assert_eq!(unescape("a\\011b\\134"), "a\tb\\");
        assert_eq!(unescape("x\\0"), "x\\0");
    }

    #[test]
    fn bind_submounts_map_host_mounts_below_the_source() {
        let host = mount_points(
            "1 0 0:1 / /oldroot rw - ext4 x rw\n2 1 0:2 / /oldroot/dev rw - devtmpfs x rw\n\
             3 2 0:3 / /oldroot/dev/shm rw - tmpfs x rw\n4 1 0:4 / /oldroot/devx rw - tmpfs x rw\n",
        );
        assert_eq!(
            bind_submounts(&host, "/oldroot", "/newroot"),
            [
                "/newroot",
                "/newroot/dev",
                "/newroot/dev/shm",
                "/newroot/devx"
            ]
        );
        assert_eq!(
            bind_submounts(&host, "/oldroot/dev", "/newroot/d"),
            ["/newroot/d", "/newroot/d/shm"]
        );
        assert_eq!(
            bind_submounts(&host, "/oldroot/etc/x", "/newroot/x"),
            ["/newroot/x"]
        );
    }

    #[test]
    fn attr_bits() {
        assert_eq!(to_attr(libc::MS_RDONLY | libc::MS_NOEXEC), 0x9);
        assert_eq!(to_attr(libc::MS_NOSUID | libc::MS_NODEV), 0x6);
        assert_eq!(to_attr(libc::MS_BIND), 0);
    }
}
