//! User namespace: uid/gid maps (written by the parent, directly or through
//! newuidmap/newgidmap) and the child's switch to its first inside ids.

use std::fmt::Write as _;
use std::process::Command;

pub use nsjail_config::spec::IdMaps;
pub use nsjail_config::IdRange;

use crate::sys::{self, SysError};

/// Errors from the user-namespace setup.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Writing a map file failed.
    #[error("writing '{path}' with '{content}' failed: {source}")]
    WriteMap {
        /// The /proc file.
        path: String,
        /// What we tried to write.
        content: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An unprivileged user wrote a map the kernel refuses (anything but
    /// its own id, alone, with count 1).
    #[error("writing '{path}' with '{content}' failed: Operation not permitted: without root, a user namespace can map only one id, your own ({kind} {own}), with count 1; map it alone (e.g. -{flag} 0:{own}), or use -U/-G (newuidmap/newgidmap, package 'uidmap') with ranges for this user in /etc/subuid and /etc/subgid, or run nsjail as root")]
    UnprivMap {
        /// The /proc file.
        path: String,
        /// What we tried to write.
        content: String,
        /// "uid" or "gid".
        kind: &'static str,
        /// Our own (effective) id of that kind.
        own: u32,
        /// The flag: 'u' or 'g'.
        flag: char,
    },
    /// newuidmap/newgidmap failed.
    #[error("'{cmd}' failed: {why} (install the 'uidmap' package and give the user ranges in /etc/subuid and /etc/subgid)")]
    Helper {
        /// The command line.
        cmd: String,
        /// Why.
        why: String,
    },
    /// A raw call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

fn write_proc(pid: i32, file: &str, content: &str) -> Result<(), UserError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, content).map_err(|source| UserError::WriteMap {
        path,
        content: content.trim_end().replace('\n', "\\n"),
        source,
    })
}

fn run_helper(helper: &str, pid: i32, ranges: &[&IdRange]) -> Result<(), UserError> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    let mut shown = format!("{helper} {pid}");
    for r in ranges {
        for v in [r.inside, r.outside, r.count] {
            cmd.arg(v.to_string());
            let _ = write!(shown, " {v}");
        }
    }
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(UserError::Helper {
            cmd: shown,
            why: format!("it returned {s}"),
        }),
        Err(e) => Err(UserError::Helper {
            cmd: shown,
            why: e.to_string(),
        }),
    }
}

fn map_text(ranges: &[&IdRange]) -> String {
    let mut s = String::new();
    for r in ranges {
        let _ = writeln!(s, "{} {} {}", r.inside, r.outside, r.count);
    }
    s
}

/// A map write refused with EPERM while we are not root: say what an
/// unprivileged user may map and how to get more.
fn unpriv_hint(e: UserError) -> UserError {
    match e {
        UserError::WriteMap {
            path,
            content,
            source,
        } if source.raw_os_error() == Some(libc::EPERM)
            && !rustix::process::geteuid().is_root() =>
        {
            let gid = path.ends_with("gid_map");
            UserError::UnprivMap {
                path,
                content,
                kind: if gid { "gid" } else { "uid" },
                own: if gid {
                    rustix::process::getegid().as_raw()
                } else {
                    rustix::process::geteuid().as_raw()
                },
                flag: if gid { 'g' } else { 'u' },
            }
        }
        e => e,
    }
}

/// Parent side: write the child's gid map (after `setgroups=deny` where the
/// kernel requires it: writer without root), then its uid map; ranges marked
/// `use_newidmap` go through newgidmap/newuidmap.
pub fn write_maps(pid: i32, maps: &IdMaps) -> Result<(), UserError> {
    let direct_g: Vec<&IdRange> = maps.gids.iter().filter(|r| !r.use_newidmap).collect();
    let helper_g: Vec<&IdRange> = maps.gids.iter().filter(|r| r.use_newidmap).collect();
    let direct_u: Vec<&IdRange> = maps.uids.iter().filter(|r| !r.use_newidmap).collect();
    let helper_u: Vec<&IdRange> = maps.uids.iter().filter(|r| r.use_newidmap).collect();
    if !direct_g.is_empty() && !rustix::process::geteuid().is_root() {
        write_proc(pid, "setgroups", "deny")?;
    }
    if !direct_g.is_empty() {
        write_proc(pid, "gid_map", &map_text(&direct_g)).map_err(unpriv_hint)?;
    }
    if !helper_g.is_empty() {
        run_helper("/usr/bin/newgidmap", pid, &helper_g)?;
    }
    if !direct_u.is_empty() {
        write_proc(pid, "uid_map", &map_text(&direct_u)).map_err(unpriv_hint)?;
    }
    if !helper_u.is_empty() {
        run_helper("/usr/bin/newuidmap", pid, &helper_u)?;
    }
    Ok(())
}

/// EXECVE mode: write our own maps from inside the user namespace we just
/// unshared. The kernel then treats us as unprivileged towards the parent
/// namespace, whatever our euid was: `setgroups` must be denied before
/// `gid_map` is written (nsjail skips this for euid 0 and fails with EPERM),
/// and each map may hold only one id, our own.
pub fn write_self_maps(maps: &IdMaps) -> Result<(), UserError> {
    if maps.uids.iter().chain(&maps.gids).any(|r| r.use_newidmap) {
        return Err(UserError::Helper {
            cmd: "newuidmap/newgidmap".to_string(),
            why: "EXECVE mode (--mode e) cannot run the helpers for its own namespace; \
                  drop use_newidmap or use --mode o"
                .to_string(),
        });
    }
    let one = |kind: &str, r: &[IdRange]| -> Result<(), UserError> {
        if r.len() > 1 || r.first().is_some_and(|x| x.count != 1) {
            return Err(UserError::WriteMap {
                path: format!("/proc/self/{kind}_map"),
                content: map_text(&r.iter().collect::<Vec<_>>())
                    .trim_end()
                    .replace('\n', "\\n"),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "EXECVE mode can map only one id (our own) per map: \
                     keep a single uidmap/gidmap entry with count 1, or use --mode o",
                ),
            });
        }
        Ok(())
    };
    one("uid", &maps.uids)?;
    one("gid", &maps.gids)?;
    write_proc_path("/proc/self/setgroups", "deny")?;
    write_proc_path(
        "/proc/self/gid_map",
        &map_text(&maps.gids.iter().collect::<Vec<_>>()),
    )?;
    write_proc_path(
        "/proc/self/uid_map",
        &map_text(&maps.uids.iter().collect::<Vec<_>>()),
    )?;
    Ok(())
}

fn write_proc_path(path: &str, content: &str) -> Result<(), UserError> {
    std::fs::write(path, content).map_err(|source| UserError::WriteMap {
        path: path.to_string(),
        content: content.trim_end().replace('\n', "\\n"),
        source,
    })
}

/// Child side: become the first inside uid/gid. With a user namespace the
/// supplementary groups are cleared (failure ignored: setgroups may be
/// denied); as root without one, the 2nd..n-th gid entries become the
/// supplementary groups.
pub fn switch_ids(maps: &IdMaps, userns: bool) -> Result<(), UserError> {
    use rustix::thread::CapabilitiesSecureBits as SB;
    let root = rustix::process::geteuid().is_root();
    if !userns && !root {
        return Ok(());
    }
    // Keep the namespace's capabilities across the uid change; caps.rs
    // decides later what survives.
    rustix::thread::set_capabilities_secure_bits(SB::NO_SETUID_FIXUP | SB::KEEP_CAPS)
        .map_err(|e| sys::err_from("prctl", "PR_SET_SECUREBITS", e.into()))?;
    let gid = maps.gids.first().map_or(0, |r| r.inside);
    let uid = maps.uids.first().map_or(0, |r| r.inside);
    sys::setresgid(gid)?;
    if userns {
        let _ = sys::setgroups(&[]);
    } else {
        let extra: Vec<u32> = maps.gids.iter().skip(1).map(|r| r.inside).collect();
        sys::setgroups(&extra)?;
    }
    sys::setresuid(uid)?;
    rustix::thread::set_capabilities_secure_bits(SB::empty())
        .map_err(|e| sys::err_from("prctl", "PR_SET_SECUREBITS(0)", e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines() {
        let a = IdRange {
            inside: 0,
            outside: 1000,
            count: 1,
            use_newidmap: false,
        };
        let b = IdRange {
            inside: 1,
            outside: 100000,
            count: 65536,
            use_newidmap: false,
        };
        assert_eq!(map_text(&[&a, &b]), "0 1000 1\n1 100000 65536\n");
    }
}
