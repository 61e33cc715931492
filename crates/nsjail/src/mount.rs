//! The jail's filesystem view.
//!
//! With `CLONE_NEWNS` (legacy mount(2) API), in the child:
//! 1. `/` becomes recursively private;
//! 2. a scratch tmpfs is mounted over an existing host directory (only in
//!    our private namespace: nothing is created on the host) and we
//!    `pivot_root` into it, which leaves the host tree intact at `/oldroot`
//!    (so bind sources are never hidden by the scratch mount);
//! 3. the jail's root is a 16 MiB tmpfs at `/newroot`; every `mount` entry is
//!    applied on top of it in order (sources taken from `/oldroot`);
//! 4. every mounted entry is remounted with its final flags (RO unless `rw`);
//! 5. `pivot_root` into `/newroot` and the old tree is detached (or, with
//!    `no_pivotroot`, `MS_MOVE` + `chroot`).
//!
//! Without `CLONE_NEWNS` there is no tree: only `chroot(--chroot DIR)`.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use config::{Jail, MountPt};

use crate::sys::{self, SysError};

/// Errors from the filesystem setup.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// A mandatory entry could not be mounted.
    #[error("failed to mount mandatory point '{dst}': {source}")]
    Mandatory {
        /// Destination inside the jail.
        dst: String,
        /// Why.
        source: Box<MountError>,
    },
    /// Creating a directory/file/symlink failed.
    #[error("{what} '{path}' failed: {source}")]
    Create {
        /// mkdir/create/symlink/write.
        what: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An env var named by `prefix_src_env`/`prefix_dst_env` is unset.
    #[error("environment variable '{0}' (prefix of a mount path) is not set: export it or remove the prefix")]
    MissingEnv(String),
    /// No directory to hold the scratch tmpfs.
    #[error("no directory among /tmp, /mnt, /run, /var/tmp, /dev exists to hold the jail's scratch tmpfs")]
    NoScratch,
}

const OLDROOT: &str = "/oldroot";
const NEWROOT: &str = "/newroot";
const ROOT_TMPFS_OPTS: &str = "size=16777216";

/// One mount entry with the env prefixes applied and the heuristics decided.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Source as the host sees it ("" for pseudo filesystems).
    pub src: String,
    /// Destination inside the jail (absolute).
    pub dst: String,
    /// Filesystem type ("" for binds).
    pub fstype: String,
    /// mount(2) data.
    pub options: String,
    /// Bind mount.
    pub bind: bool,
    /// Read-write.
    pub rw: bool,
    /// Directory (else a file) mount point.
    pub is_dir: bool,
    /// Failure aborts the jail.
    pub mandatory: bool,
    /// A symlink dst -> src instead of a mount.
    pub symlink: bool,
    /// Bytes to bind as a file.
    pub content: Option<Vec<u8>>,
    /// Extra MS_NOSUID/MS_NODEV/MS_NOEXEC flags.
    pub extra_flags: libc::c_ulong,
}

fn env_prefix(name: &str) -> Result<String, MountError> {
    if name.is_empty() {
        return Ok(String::new());
    }
    std::env::var(name).map_err(|_| MountError::MissingEnv(name.to_string()))
}

/// Resolve a config entry (env prefixes, is_dir heuristic).
pub fn entry_of(m: &MountPt) -> Result<Entry, MountError> {
    let src = format!("{}{}", env_prefix(m.prefix_src_env())?, m.src());
    let dst = format!("{}{}", env_prefix(m.prefix_dst_env())?, m.dst());
    let content = (!m.src_content().is_empty()).then(|| m.src_content().to_vec());
    let is_dir = if m.has_is_dir() {
        m.is_dir()
    } else if content.is_some() {
        false
    } else if src.is_empty() {
        true
    } else if m.is_bind() {
        std::fs::metadata(&src)
            .map(|md| md.is_dir())
            .unwrap_or(true)
    } else {
        true
    };
    let mut extra = 0;
    if m.nosuid() {
        extra |= libc::MS_NOSUID;
    }
    if m.nodev() {
        extra |= libc::MS_NODEV;
    }
    if m.noexec() {
        extra |= libc::MS_NOEXEC;
    }
    Ok(Entry {
        src,
        dst,
        fstype: m.fstype().to_string(),
        options: m.options().to_string(),
        bind: m.is_bind() || content.is_some(),
        rw: m.rw(),
        is_dir,
        mandatory: m.mandatory(),
        symlink: m.is_symlink(),
        content,
        extra_flags: extra,
    })
}

/// nsjail's INFO description of a mount entry.
pub fn describe(m: &MountPt) -> String {
    if m.is_symlink() {
        return format!("Symlink: '{}' -> '{}'", m.src(), m.dst());
    }
    let is_dir = entry_of(m).map(|e| e.is_dir).unwrap_or(true);
    let mut flags = Vec::new();
    if !m.rw() {
        flags.push("MS_RDONLY");
    }
    if m.is_bind() {
        flags.push("MS_BIND|MS_REC|MS_PRIVATE");
    }
    format!(
        "Mount: '{}' -> '{}' flags:{} type:'{}' options:'{}' dir:{}",
        if m.src().is_empty() && !m.src_content().is_empty() {
            "[content]"
        } else {
            m.src()
        },
        m.dst(),
        if flags.is_empty() {
            "0".to_string()
        } else {
            flags.join("|")
        },
        m.fstype(),
        m.options(),
        is_dir
    )
}

fn join(root: &str, p: &str) -> String {
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{p}")
    }
}

fn mkdir_p(path: &str) -> Result<(), MountError> {
    if Path::new(path).is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|source| MountError::Create {
            what: "mkdir",
            path: path.to_string(),
            source,
        })
}

fn make_mountpoint(path: &str, is_dir: bool) -> Result<(), MountError> {
    if let Some(parent) = Path::new(path).parent() {
        mkdir_p(&parent.to_string_lossy())?;
    }
    if Path::new(path).symlink_metadata().is_ok() {
        return Ok(());
    }
    let r = if is_dir {
        std::fs::DirBuilder::new().mode(0o711).create(path)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(|_| ())
    };
    r.map_err(|source| MountError::Create {
        what: if is_dir { "mkdir" } else { "create" },
        path: path.to_string(),
        source,
    })
}

/// State while the tree is built (stage between the two pivots).
struct Builder {
    dynamic: usize,
    mounted: Vec<Entry>,
}

impl Builder {
    fn apply(&mut self, e: &Entry) -> Result<(), MountError> {
        let target = join(NEWROOT, &e.dst);
        if e.symlink {
            if let Some(parent) = Path::new(&target).parent() {
                mkdir_p(&parent.to_string_lossy())?;
            }
            return std::os::unix::fs::symlink(&e.src, &target).map_err(|source| {
                MountError::Create {
                    what: "symlink",
                    path: format!("{} -> {}", e.dst, e.src),
                    source,
                }
            });
        }
        make_mountpoint(&target, e.is_dir)?;
        let mut flags = e.extra_flags;
        let src_path;
        let src = if let Some(content) = &e.content {
            self.dynamic += 1;
            src_path = format!("/dynamic.{}", self.dynamic);
            std::fs::write(&src_path, content).map_err(|source| MountError::Create {
                what: "write",
                path: src_path.clone(),
                source,
            })?;
            flags |= libc::MS_BIND | libc::MS_REC | libc::MS_PRIVATE;
            Some(src_path.as_str())
        } else if e.bind {
            flags |= libc::MS_BIND | libc::MS_REC | libc::MS_PRIVATE;
            src_path = join(OLDROOT, &e.src);
            Some(src_path.as_str())
        } else if e.src.starts_with('/') {
            src_path = join(OLDROOT, &e.src);
            Some(src_path.as_str())
        } else if e.src.is_empty() {
            None
        } else {
            Some(e.src.as_str())
        };
        let fstype = (!e.fstype.is_empty()).then_some(e.fstype.as_str());
        let data = (!e.options.is_empty()).then_some(e.options.as_str());
        let r = sys::mount(src, &target, fstype, flags, data);
        let r = match r {
            Err(err) if err.source.raw_os_error() == Some(libc::EPERM) && !e.rw => {
                sys::mount(src, &target, fstype, flags | libc::MS_RDONLY, data)
            }
            other => other,
        };
        if e.content.is_some() {
            let _ = std::fs::remove_file(src.unwrap_or_default());
        }
        r?;
        self.mounted.push(e.clone());
        Ok(())
    }
}

/// Final per-mount flags: the requested ones plus those the mount already
/// has (which may be locked in a user namespace).
fn remount(e: &Entry) -> Result<(), MountError> {
    let target = join(NEWROOT, &e.dst);
    let keep = sys::statvfs_flags(&target)? & !libc::MS_RDONLY;
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | e.extra_flags | keep;
    if !e.rw {
        flags |= libc::MS_RDONLY;
    }
    sys::mount(None, &target, None, flags, None)?;
    Ok(())
}

fn scratch_dir() -> Result<&'static str, MountError> {
    ["/tmp", "/mnt", "/run", "/var/tmp", "/dev"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .ok_or(MountError::NoScratch)
}

/// Build the jail's filesystem view (child, after the uid switch).
pub fn setup(jail: &Jail, entries: &[Entry]) -> Result<(), MountError> {
    let cfg = &jail.cfg;
    if !cfg.clone_newns() {
        if let Some(dir) = &jail.chroot {
            sys::chroot(dir)?;
            sys::chdir("/")?;
        }
        sys::chdir(cfg.cwd())?;
        return Ok(());
    }
    sys::chdir("/")?;
    sys::mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let scratch = scratch_dir()?;
    sys::mount(
        None,
        scratch,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=16777216,mode=0755"),
    )?;
    sys::chdir(scratch)?;
    for d in ["oldroot", "newroot"] {
        let p = join(scratch, d);
        mkdir_p(&p)?;
    }
    sys::mount(
        None,
        &join(scratch, "newroot"),
        Some("tmpfs"),
        0,
        Some(ROOT_TMPFS_OPTS),
    )?;
    sys::pivot_root(".", "oldroot")?;
    sys::chdir("/")?;

    let mut b = Builder {
        dynamic: 0,
        mounted: Vec::with_capacity(entries.len()),
    };
    for e in entries {
        if let Err(err) = b.apply(e) {
            if e.mandatory {
                return Err(MountError::Mandatory {
                    dst: e.dst.clone(),
                    source: Box::new(err),
                });
            }
            log::warn!("Non-mandatory mount of '{}' failed, going on: {err}", e.dst);
        }
    }
    // The bare root tmpfs is read-only unless something mounted over `/`
    // decides otherwise (that entry's own remount below).
    if !b
        .mounted
        .iter()
        .any(|e| e.dst.trim_start_matches('/').is_empty())
    {
        sys::mount(
            None,
            NEWROOT,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            None,
        )?;
    }
    for e in &b.mounted {
        if let Err(err) = remount(e) {
            if e.mandatory {
                return Err(MountError::Mandatory {
                    dst: e.dst.clone(),
                    source: Box::new(err),
                });
            }
            log::warn!("Remount of '{}' failed, going on: {err}", e.dst);
        }
    }

    sys::chdir(NEWROOT)?;
    if cfg.no_pivotroot() {
        sys::mount(Some("."), "/", None, libc::MS_MOVE, None)?;
        sys::chroot(".")?;
    } else {
        sys::pivot_root(".", ".")?;
        sys::umount2(".", libc::MNT_DETACH)?;
    }
    sys::chdir("/")?;
    sys::chdir(cfg.cwd())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_paths() {
        assert_eq!(join("/newroot", "/"), "/newroot");
        assert_eq!(join("/newroot", "/proc"), "/newroot/proc");
        assert_eq!(join("/oldroot", "etc/x"), "/oldroot/etc/x");
    }

    #[test]
    fn heuristics() {
        let mut m = MountPt::new();
        m.set_dst("/x".into());
        assert!(entry_of(&m).unwrap().is_dir);
        m.set_src_content(b"hi".to_vec());
        let e = entry_of(&m).unwrap();
        assert!(!e.is_dir && e.bind);
        let mut b = MountPt::new();
        b.set_src("/etc/hostname".into());
        b.set_dst("/h".into());
        b.set_is_bind(true);
        assert!(!entry_of(&b).unwrap().is_dir);
        b.set_src("/etc".into());
        assert!(entry_of(&b).unwrap().is_dir);
    }
}
