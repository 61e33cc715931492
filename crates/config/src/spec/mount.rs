//! The filesystem part of a jail: each `mount` entry with its env prefixes
//! applied and nsjail's heuristics decided (is it a directory? a bind?),
//! plus the root settings. The runtime (`nsjail::mount`) builds the tree
//! from these values only.

use crate::proto::config::MountPt;
use crate::MountApi;

/// A mount entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountSpecError {
    /// An env var named by `prefix_src_env`/`prefix_dst_env` is unset (as
    /// nsjail, a mandatory entry then fails the jail).
    #[error("mount of '{dst}': environment variable '{var}' ({field}) is not set in nsjail's environment: export it or remove {field}")]
    MissingEnv {
        /// The variable.
        var: String,
        /// `prefix_src_env` or `prefix_dst_env`.
        field: &'static str,
        /// The entry's dst as written.
        dst: String,
    },
    /// A bind source's path crosses a symlink inside a read-write bind
    /// source of the same jail (ours).
    #[error("bind source '{src}' (mounted at '{dst}'): '{link}' is a symlink inside '{rw_src}', which this jail can write (a read-write bind): a jail could have planted it to reach any host file; bind the link's target itself, or pass --allow_bind_symlinks")]
    SymlinkInRwBind {
        /// The bind source as written.
        src: String,
        /// Its destination.
        dst: String,
        /// The symlink on the way (host path, its parents resolved).
        link: String,
        /// The read-write bind source it lies in (canonical).
        rw_src: String,
    },
}

/// Ours: refuses a bind source whose path crosses a symlink that lies inside
/// the (canonical) source of a read-write bind of the same jail: a jail can
/// write there, so an earlier run could have planted the link (run 1 with
/// `-B /srv/shared:/data` plants `/data/p -> /etc/passwd`, run 2 with
/// `-R /srv/shared/p:/home/f` would read the host's passwd). A read-write
/// bind of `/` itself is not counted: that jail can write the whole host
/// anyway. Paths are walked as the host sees them now (lowering time).
///
/// # Errors
/// [`MountSpecError::SymlinkInRwBind`] naming the first such link.
pub fn check_bind_symlinks(mounts: &[MountEntry]) -> Result<(), MountSpecError> {
    use std::path::{Component, Path, PathBuf};
    let rw: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.bind && m.rw && !m.skip && m.content.is_none() && !m.src.is_empty())
        .filter_map(|m| std::fs::canonicalize(&m.src).ok())
        .filter(|p| p.is_dir() && p != Path::new("/"))
        .collect();
    if rw.is_empty() {
        return Ok(());
    }
    for m in mounts.iter().filter(|m| {
        m.bind && !m.skip && m.content.is_none() && !m.symlink && m.src.starts_with('/')
    }) {
        let mut cur = PathBuf::from("/");
        for c in Path::new(&m.src).components() {
            match c {
                Component::Normal(n) => cur.push(n),
                Component::ParentDir => {
                    cur.pop();
                    continue;
                }
                _ => continue,
            }
            let Ok(md) = std::fs::symlink_metadata(&cur) else {
                break; // missing: the mount reports it
            };
            if !md.file_type().is_symlink() {
                continue;
            }
            if let Some(r) = rw.iter().find(|r| cur.starts_with(r) && cur != **r) {
                return Err(MountSpecError::SymlinkInRwBind {
                    src: m.src.clone(),
                    dst: m.dst.clone(),
                    link: cur.display().to_string(),
                    rw_src: r.display().to_string(),
                });
            }
            match std::fs::canonicalize(&cur) {
                Ok(p) => cur = p,
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// One mount entry, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Source as the host sees it ("" for pseudo filesystems).
    pub src: String,
    /// Destination inside the jail (absolute).
    pub dst: String,
    /// Filesystem type ("" for binds).
    pub fstype: String,
    /// mount(2) data.
    pub options: String,
    /// Bind mount (also every `src_content` entry).
    pub bind: bool,
    /// Read-write.
    pub rw: bool,
    /// Directory (else a file) mount point.
    pub is_dir: bool,
    /// Failure aborts the jail.
    pub mandatory: bool,
    /// A symlink dst -> src instead of a mount.
    pub symlink: bool,
    /// Bytes to bind as a file (`src_content`).
    pub content: Option<Vec<u8>>,
    /// Extra `MS_NOSUID`/`MS_NODEV`/`MS_NOEXEC` bits.
    pub extra_flags: libc::c_ulong,
    /// Not applied: a non-mandatory entry whose env prefix is unset (the
    /// lowering gave a warning).
    pub skip: bool,
}

impl MountEntry {
    /// Resolve a config entry (env prefixes, the is_dir heuristic, as
    /// nsjail). A non-mandatory entry whose env prefix is unset comes back
    /// with `skip` set and the warning; a mandatory one is an error.
    ///
    /// # Errors
    /// [`MountSpecError::MissingEnv`] for a mandatory entry whose prefix
    /// variable is unset.
    pub fn lower(m: &MountPt) -> Result<(MountEntry, Option<String>), MountSpecError> {
        let prefixes = env_prefix(m.prefix_src_env(), "prefix_src_env", m.dst()).and_then(|s| {
            env_prefix(m.prefix_dst_env(), "prefix_dst_env", m.dst()).map(|d| (s, d))
        });
        let (psrc, pdst, warning) = match prefixes {
            Ok((s, d)) => (s, d, None),
            Err(e) if !m.mandatory() => (
                String::new(),
                String::new(),
                Some(format!("{e}; skipping this non-mandatory mount")),
            ),
            Err(e) => return Err(e),
        };
        let src = format!("{psrc}{}", m.src());
        let dst = format!("{pdst}{}", m.dst());
        let content = (!m.src_content().is_empty()).then(|| m.src_content().to_vec());
        let is_dir = if m.has_is_dir() {
            m.is_dir()
        } else if content.is_some() {
            false
        } else if src.is_empty() {
            true
        } else if m.is_bind() {
            // nsjail: stat(src) decides; a missing source counts as a file.
            std::fs::metadata(&src)
                .map(|md| md.is_dir())
                .unwrap_or(false)
        } else {
            true
        };
        let mut extra = 0;
        for (on, bit) in [
            (m.nosuid(), libc::MS_NOSUID),
            (m.nodev(), libc::MS_NODEV),
            (m.noexec(), libc::MS_NOEXEC),
        ] {
            if on {
                extra |= bit;
            }
        }
        let skip = warning.is_some();
        Ok((
            MountEntry {
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
                skip,
            },
            warning,
        ))
    }

    /// `'src' -> 'dst' (bind, flags: MS_RDONLY|MS_BIND|MS_REC)`, for messages.
    pub fn summary(&self) -> String {
        if self.symlink {
            return format!("'{}' -> '{}' (symlink)", self.src, self.dst);
        }
        let mut flags = Vec::new();
        if !self.rw {
            flags.push("MS_RDONLY");
        }
        if self.bind {
            flags.push("MS_BIND|MS_REC");
        }
        for (f, n) in [
            (libc::MS_NOSUID, "MS_NOSUID"),
            (libc::MS_NODEV, "MS_NODEV"),
            (libc::MS_NOEXEC, "MS_NOEXEC"),
        ] {
            if self.extra_flags & f != 0 {
                flags.push(n);
            }
        }
        let flags = if flags.is_empty() {
            "0".to_string()
        } else {
            flags.join("|")
        };
        let (src, kind) = match &self.content {
            Some(c) => (
                format!("[{} bytes of src_content]", c.len()),
                "bind".to_string(),
            ),
            None if self.bind => (self.src.clone(), "bind".to_string()),
            None => (
                if self.src.is_empty() {
                    "none".to_string()
                } else {
                    self.src.clone()
                },
                format!("type: {}", self.fstype),
            ),
        };
        let opts = if self.options.is_empty() {
            String::new()
        } else {
            format!(", options: '{}'", self.options)
        };
        format!("'{src}' -> '{}' ({kind}, flags: {flags}{opts})", self.dst)
    }

    /// A fresh filesystem whose contents live only in memory and belong to
    /// the jail: mount points may be created inside it.
    pub fn owned_fs(&self) -> bool {
        !self.bind && self.content.is_none() && matches!(self.fstype.as_str(), "tmpfs" | "ramfs")
    }
}

/// A destination as the jail sees it, lexically normalised: `/a/./b//../c`
/// → `/a/c` (`..` never climbs above `/`).
pub fn normalize_dst(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether a mount at `dst` puts something at `path` (both jail paths):
/// `dst` is `/`, `path` itself, or one of its parent directories.
pub fn dst_covers(dst: &str, path: &str) -> bool {
    let dst = normalize_dst(dst);
    let path = normalize_dst(path);
    dst == "/" || path == dst || path.starts_with(&format!("{dst}/"))
}

impl FsSpec {
    /// Why the program at `path` will not exist inside the jail: without
    /// `--chroot` its root is an empty tmpfs and no mount covers the
    /// program's directory (ours; nsjail only fails at execve). `None` when
    /// some mount covers it, without a mount namespace, or for a path that
    /// is not absolute.
    pub fn program_missing(&self, path: &str) -> Option<String> {
        if !path.starts_with('/') || self.covers(path) {
            return None;
        }
        let dir = std::path::Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".to_string());
        Some(format!(
            "without --chroot the jail's root is an empty tmpfs and no mount covers {dir}; add --chroot / (or a read-only bind such as -R {dir}), or --execute_fd to run it from the host"
        ))
    }

    /// Whether some mount of the jail (not a symlink, not skipped) covers
    /// `path`: without one (and without `--chroot`) the path does not exist
    /// inside the jail, whose root is an empty tmpfs.
    pub fn covers(&self, path: &str) -> bool {
        !self.newns
            || self
                .mounts
                .iter()
                .any(|m| !m.symlink && !m.skip && dst_covers(&m.dst, path))
    }
}

fn env_prefix(name: &str, field: &'static str, dst: &str) -> Result<String, MountSpecError> {
    if name.is_empty() {
        return Ok(String::new());
    }
    std::env::var(name).map_err(|_| MountSpecError::MissingEnv {
        var: name.to_string(),
        field,
        dst: dst.to_string(),
    })
}

/// The jail's filesystem view: what `nsjail::mount` builds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsSpec {
    /// A private mount namespace (`clone_newns`); without it only
    /// `chroot` and `cwd` apply.
    pub newns: bool,
    /// `--chroot DIR` (already the first entry of `mounts` with a mount
    /// namespace).
    pub chroot: Option<String>,
    /// The entries in order: `--chroot` bind first, config/CLI mounts, the
    /// implicit `/proc` last.
    pub mounts: Vec<MountEntry>,
    /// `--rw`: the root stays writable.
    pub root_rw: bool,
    /// `no_pivotroot`: `MS_MOVE` + `chroot` instead of `pivot_root`.
    pub no_pivotroot: bool,
    /// `--experimental_mnt`.
    pub api: MountApi,
    /// The working directory inside the jail (`cwd`).
    pub cwd: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(m: &MountPt) -> MountEntry {
        MountEntry::lower(m).unwrap().0
    }

    #[test]
    fn heuristics() {
        let mut m = MountPt::new();
        m.set_dst("/x".into());
        assert!(entry(&m).is_dir);
        m.set_src_content(b"hi".to_vec());
        let e = entry(&m);
        assert!(!e.is_dir && e.bind);
        let mut b = MountPt::new();
        b.set_src("/etc/hostname".into());
        b.set_dst("/h".into());
        b.set_is_bind(true);
        assert!(!entry(&b).is_dir);
        b.set_src("/etc".into());
        assert!(entry(&b).is_dir);
        b.set_is_dir(false);
        assert!(!entry(&b).is_dir);
        let mut t = MountPt::new();
        t.set_src("none".into());
        t.set_dst("/t".into());
        t.set_fstype("tmpfs".into());
        assert!(entry(&t).is_dir);
        assert!(entry(&t).owned_fs());
    }

    #[test]
    fn env_prefixes() {
        let mut m = MountPt::new();
        m.set_src("/b".into());
        m.set_dst("/d".into());
        m.set_is_bind(true);
        m.set_prefix_src_env("NSJAIL_UNIT_SURELY_UNSET_VAR".into());
        let e = MountEntry::lower(&m).unwrap_err().to_string();
        assert!(
            e.contains("NSJAIL_UNIT_SURELY_UNSET_VAR") && e.contains("prefix_src_env"),
            "{e}"
        );
        m.set_mandatory(false);
        let (e, warning) = MountEntry::lower(&m).unwrap();
        assert!(e.skip);
        assert!(warning
            .unwrap()
            .contains("skipping this non-mandatory mount"));
        m.set_prefix_src_env("HOME".into());
        let home = std::env::var("HOME").unwrap_or_default();
        if !home.is_empty() {
            assert_eq!(entry(&m).src, format!("{home}/b"));
        }
    }

    #[test]
    fn summaries() {
        let mut m = MountPt::new();
        m.set_src("/usr".into());
        m.set_dst("/usr".into());
        m.set_is_bind(true);
        m.set_nosuid(true);
        assert_eq!(
            entry(&m).summary(),
            "'/usr' -> '/usr' (bind, flags: MS_RDONLY|MS_BIND|MS_REC|MS_NOSUID)"
        );
        let mut t = MountPt::new();
        t.set_dst("/tmp".into());
        t.set_fstype("tmpfs".into());
        t.set_options("size=1".into());
        t.set_rw(true);
        assert_eq!(
            entry(&t).summary(),
            "'none' -> '/tmp' (type: tmpfs, flags: 0, options: 'size=1')"
        );
    }
}
