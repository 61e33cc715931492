//! Errors of the filesystem setup, each one line naming the mount entry,
//! the errno and what to change.

use std::io;

use crate::sys::{self, SysError};

/// Errors from the filesystem setup.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A fixed step of the setup (scratch tmpfs, pivot_root, ...) failed.
    #[error("{step}: {source}")]
    Setup {
        /// What was being done.
        step: &'static str,
        /// The failed call.
        source: SysError,
    },
    /// One mount entry failed at some step.
    #[error(
        "mount {entry}: {step} failed: {} ({}){}",
        sys::errno_text(source),
        errno_name(source),
        hint_suffix(hint)
    )]
    Entry {
        /// The entry, as `'src' -> 'dst' (type, flags)`.
        entry: String,
        /// The step: `mount(2)`, `making it read-only`, `mkdir '/x'`...
        step: String,
        /// The OS error.
        source: io::Error,
        /// What to change ("" when there is nothing useful to say).
        hint: String,
    },
    /// A mount point would have to be created inside a mount that is not
    /// a tmpfs of the jail's own (a host bind, procfs, ...).
    #[error(
        "mount {entry}: '{path}' does not exist and would have to be created inside {owner}; \
         building the jail never writes to the host: create '{path}' on the host, \
         or mount a tmpfs at '{parent}' (or above it) before this entry"
    )]
    HostWrite {
        /// The entry.
        entry: String,
        /// The missing path (jail view).
        path: String,
        /// Its existing parent (jail view).
        parent: String,
        /// Which mount holds the parent, e.g. "the bind of host '/' at '/'".
        owner: String,
    },
    /// A destination that cannot be created as written.
    #[error("mount {entry}: destination '{dst}' {why}")]
    BadDst {
        /// The entry.
        entry: String,
        /// The destination as resolved so far.
        dst: String,
        /// Why it cannot be used.
        why: &'static str,
    },
    /// No directory to hold the scratch tmpfs.
    #[error("no directory among /tmp, /mnt, /run, /var/tmp, /dev exists to hold the jail's scratch tmpfs (it is mounted only inside the jail's mount namespace): create one of them")]
    NoScratch,
}

impl MountError {
    /// A fixed setup step failed.
    pub(super) fn setup(step: &'static str) -> impl FnOnce(SysError) -> MountError {
        move |source| MountError::Setup { step, source }
    }
}

fn hint_suffix(h: &str) -> String {
    if h.is_empty() {
        String::new()
    } else {
        format!("; {h}")
    }
}

/// The symbolic name of an errno (`ENOENT`), or `errno N`.
pub fn errno_name(e: &io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return "no errno".to_string();
    };
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}

/// What to change after `errno` while mounting an entry.
pub(super) fn hint(
    errno: Option<i32>,
    bind: bool,
    src: &str,
    fstype: &str,
    options: &str,
) -> String {
    let mut h = match errno {
        Some(libc::ENOENT) if bind => format!(
            "the source '{src}' does not exist on the host: create it, fix the path, or set mandatory: false"
        ),
        Some(libc::ENOENT) => format!(
            "a path named by the source '{src}' or the options '{options}' does not exist: fix it or set mandatory: false"
        ),
        Some(libc::EACCES) => format!(
            "permission denied on '{src}' or one of its parent directories: the jail's user needs search permission on each of them (e.g. chmod o+x)"
        ),
        Some(libc::EPERM) => "not permitted: inside a user namespace the host's flags on the source (ro, nosuid, nodev, noexec) cannot be cleared and some filesystems cannot be mounted; drop rw or the flag, or run without a user namespace (--disable_clone_newuser)".to_string(),
        Some(libc::ENODEV) => format!(
            "the kernel does not know the filesystem type '{fstype}' (see /proc/filesystems): fix fstype or load its module"
        ),
        Some(libc::EINVAL) if !bind => format!(
            "the kernel rejected the options '{options}' for type '{fstype}': check them (the mount(2) data string)"
        ),
        Some(libc::EINVAL) => "the kernel rejected the bind: check that the source is a plain file or directory".to_string(),
        Some(libc::ENOTDIR) | Some(libc::EISDIR) => "the source and the mount point differ (one is a file, the other a directory): set is_dir to match the source".to_string(),
        Some(libc::EEXIST) => "something already exists at the destination: remove it from the entry or choose another dst".to_string(),
        Some(libc::ELOOP) => "too many levels of symbolic links in the path: use the real path".to_string(),
        Some(libc::ENOSPC) => "the filesystem holding the mount point is full: give its tmpfs a larger size".to_string(),
        _ => String::new(),
    };
    if fstype == "proc" {
        if !h.is_empty() {
            h.push_str("; ");
        }
        h.push_str("procfs mounts may fail if the host's /proc has overmounts (e.g. /dev/null on /proc/kcore)");
    }
    h
}
