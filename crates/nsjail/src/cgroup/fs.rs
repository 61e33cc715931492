//! The filesystem operations the cgroup code needs, behind a trait so the
//! planning and decision logic can run against an in-memory fake in unit
//! tests, and against the real `/sys/fs/cgroup` in production.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `statfs(2)` `f_type` of a cgroup v2 filesystem.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `statfs(2)` `f_type` of a cgroup v1 filesystem.
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// Mode of the cgroup parent directories nsjail creates (v1 `<mount>/<parent>`
/// that did not exist): unusual on purpose, so that any nsjail run that
/// shares such a parent, not only the one that made it, removes it when it
/// is the last one out, and a parent an operator made is never touched.
pub const PARENT_MARK_MODE: u32 = 0o701;

/// Mode of the jail cgroup directories we create (`NSJAIL.<pid>`,
/// `NSJAIL_SELF.<pid>`; ours, nsjail uses 0700): the mark by which a later
/// run knows a leftover directory was made by this nsjail and not by the
/// C++ nsjail or an operator.
pub const JAIL_MARK_MODE: u32 = 0o701;

/// An exclusive `flock(2)` on a cgroup directory we created, held for as
/// long as the directory is in use (ours). A directory of ours that nobody
/// holds locked belongs to an nsjail that is gone (the kernel drops the lock
/// with the process, also on SIGKILL, in every PID namespace).
#[derive(Debug)]
pub struct DirLock {
    _file: Option<std::fs::File>,
}

impl DirLock {
    /// A lock that holds nothing (file systems without locking: the fake).
    pub fn none() -> DirLock {
        DirLock { _file: None }
    }
}

/// Everything the cgroup module does to the outside world.
pub trait CgroupFs: Send + Sync + fmt::Debug {
    /// Reads a whole (small) control file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Writes `value` with one `write(2)` to an existing control file (no create, no truncate).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// `mkdir(path, 0700)`, not recursive.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// `rmdir(path)`.
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    /// Creates a missing parent directory with [`PARENT_MARK_MODE`], the
    /// mark by which every nsjail run sharing it knows it may remove it
    /// once it is empty (operators' own parents never carry that mode).
    fn mkdir_parent(&self, path: &Path) -> io::Result<()> {
        self.mkdir(path)
    }
    /// Whether an existing parent carries the mark of [`Self::mkdir_parent`].
    fn is_marked_parent(&self, _path: &Path) -> bool {
        false
    }
    /// Creates a jail directory with [`JAIL_MARK_MODE`].
    fn mkdir_jail(&self, path: &Path) -> io::Result<()> {
        self.mkdir(path)
    }
    /// Whether an existing directory carries the mark of [`Self::mkdir_jail`].
    fn is_marked_jail(&self, _path: &Path) -> bool {
        false
    }
    /// Takes the exclusive lock of a directory we just created (waiting
    /// while a sweeping run looks at it), and checks that `path` is still
    /// that directory: ENOENT when a sweep removed it in between.
    fn lock_dir(&self, _path: &Path) -> io::Result<DirLock> {
        Ok(DirLock::none())
    }
    /// Tries the exclusive lock of `path` without waiting: None when a live
    /// process holds it.
    fn try_lock_dir(&self, _path: &Path) -> io::Result<Option<DirLock>> {
        Ok(Some(DirLock::none()))
    }
    /// Names of the sub-directories of `path`.
    fn subdirs(&self, path: &Path) -> io::Result<Vec<String>>;
    /// `statfs(path).f_type`.
    fn fs_type(&self, path: &Path) -> io::Result<i64>;
    /// Resolves symlinks (`/sys/fs/cgroup/cpu` → `cpu,cpuacct` on many hosts).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// `kill(pid, SIGKILL)`.
    fn kill(&self, pid: i32) -> io::Result<()>;
    /// This process's pid.
    fn getpid(&self) -> i32;
    /// Text of `/proc/self/mountinfo`.
    fn mountinfo(&self) -> io::Result<String> {
        self.read(Path::new("/proc/self/mountinfo"))
    }
    /// Text of `/proc/self/cgroup`.
    fn proc_self_cgroup(&self) -> io::Result<String> {
        self.read(Path::new("/proc/self/cgroup"))
    }
    /// Sleeps between retries (a no-op in the fake).
    fn pause(&self) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl CgroupFs for RealFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        // cgroup files parse each write(2) on its own: one call, never split.
        let n = f.write(value.as_bytes())?;
        if n != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", value.len()),
            ));
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(path)
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn mkdir_parent(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(path)?;
        // Explicitly: the umask must not change the mark.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(PARENT_MARK_MODE))
    }

    fn is_marked_parent(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.is_dir() && m.mode() & 0o7777 == PARENT_MARK_MODE)
    }

    fn mkdir_jail(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(JAIL_MARK_MODE))
    }

    fn is_marked_jail(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_dir() && m.mode() & 0o7777 == JAIL_MARK_MODE)
    }

    fn lock_dir(&self, path: &Path) -> io::Result<DirLock> {
        let f = open_dir(path)?;
        crate::sys::flock_exclusive(f.as_fd(), true)?;
        // A sweep may have removed the directory between our mkdir and the
        // lock: then `path` is gone (or a new directory).
        let held = f.metadata()?;
        let now = std::fs::symlink_metadata(path)?;
        if held.ino() != now.ino() || held.dev() != now.dev() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(DirLock { _file: Some(f) })
    }

    fn try_lock_dir(&self, path: &Path) -> io::Result<Option<DirLock>> {
        let f = open_dir(path)?;
        Ok(crate::sys::flock_exclusive(f.as_fd(), false)?.then_some(DirLock { _file: Some(f) }))
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }

    fn fs_type(&self, path: &Path) -> io::Result<i64> {
        statfs_type(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn kill(&self, pid: i32) -> io::Result<()> {
        sigkill(pid)
    }

    fn getpid(&self) -> i32 {
        std::process::id() as i32
    }
}

/// Opens a directory (never following a final symlink) for flock(2).
fn open_dir(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `statfs(2)` → `f_type`.
fn statfs_type(path: &Path) -> io::Result<i64> {
    let st = rustix::fs::statfs(path)?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// `kill(pid, SIGKILL)`; refuses pids that would address groups or everyone.
fn sigkill(pid: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to kill pid {pid}"),
        ));
    }
    crate::sys::kill(pid, libc::SIGKILL).map_err(|e| e.source)
}

/// An in-memory cgroup filesystem for unit tests: directories, files with
/// contents, a log of every mutation, and injectable errors.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;

    /// One recorded mutation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        Mkdir(PathBuf),
        Rmdir(PathBuf),
        Write(PathBuf, String),
        Kill(i32),
    }

    /// A hook deciding whether a write fails: (path, value, state) → errno.
    pub type WriteHook = Box<dyn Fn(&Path, &str, &State) -> Option<i32> + Send + Sync>;

    #[derive(Debug, Default)]
    pub struct State {
        pub dirs: BTreeSet<PathBuf>,
        pub files: BTreeMap<PathBuf, String>,
        pub fs_types: BTreeMap<PathBuf, i64>,
        pub ops: Vec<Op>,
        /// Errno for mkdir/rmdir of exact paths.
        pub mkdir_err: BTreeMap<PathBuf, i32>,
        pub rmdir_err: BTreeMap<PathBuf, i32>,
        /// Errno for the next mkdir of exact paths (consumed).
        pub mkdir_once: BTreeMap<PathBuf, i32>,
        /// Directories carrying our jail mark.
        pub marked: BTreeSet<PathBuf>,
        /// Directories a live process holds locked.
        pub locked: BTreeSet<PathBuf>,
    }

    #[derive(Default)]
    pub struct FakeFs {
        pub state: Mutex<State>,
        pub write_hook: Option<WriteHook>,
        pub pid: i32,
    }

    impl fmt::Debug for FakeFs {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("FakeFs").finish_non_exhaustive()
        }
    }

    fn err(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    impl FakeFs {
        pub fn new(pid: i32) -> FakeFs {
            FakeFs {
                pid,
                ..Default::default()
            }
        }
        pub fn dir(&self, p: &str) -> &Self {
            let mut st = self.state.lock().unwrap();
            let mut cur = PathBuf::new();
            for c in Path::new(p).components() {
                cur.push(c);
                st.dirs.insert(cur.clone());
            }
            self
        }
        pub fn file(&self, p: &str, contents: &str) -> &Self {
            let path = PathBuf::from(p);
            if let Some(parent) = path.parent() {
                self.dir(parent.to_str().unwrap());
            }
            self.state
                .lock()
                .unwrap()
                .files
                .insert(path, contents.to_string());
            self
        }
        pub fn fstype(&self, p: &str, t: i64) -> &Self {
            self.state
                .lock()
                .unwrap()
                .fs_types
                .insert(PathBuf::from(p), t);
            self
        }
        pub fn ops(&self) -> Vec<Op> {
            self.state.lock().unwrap().ops.clone()
        }
        pub fn has_dir(&self, p: &str) -> bool {
            self.state.lock().unwrap().dirs.contains(Path::new(p))
        }
        pub fn contents(&self, p: &str) -> Option<String> {
            self.state.lock().unwrap().files.get(Path::new(p)).cloned()
        }
        pub fn writes(&self) -> Vec<(String, String)> {
            self.ops()
                .into_iter()
                .filter_map(|o| match o {
                    Op::Write(p, v) => Some((p.to_string_lossy().into_owned(), v)),
                    _ => None,
                })
                .collect()
        }
    }

    impl CgroupFs for FakeFs {
        fn read(&self, path: &Path) -> io::Result<String> {
            let st = self.state.lock().unwrap();
            st.files.get(path).cloned().ok_or_else(|| err(libc::ENOENT))
        }
        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            {
                let st = self.state.lock().unwrap();
                if let Some(h) = &self.write_hook {
                    if let Some(e) = h(path, value, &st) {
                        return Err(err(e));
                    }
                }
                let parent_ok = path.parent().is_some_and(|p| st.dirs.contains(p));
                if !parent_ok {
                    return Err(err(libc::ENOENT));
                }
            }
            let mut st = self.state.lock().unwrap();
            st.ops
                .push(Op::Write(path.to_path_buf(), value.to_string()));
            st.files.insert(path.to_path_buf(), value.to_string());
            Ok(())
        }
        fn mkdir(&self, path: &Path) -> io::Result<()> {
            let mut st = self.state.lock().unwrap();
            if let Some(e) = st.mkdir_err.get(path) {
                return Err(err(*e));
            }
            if let Some(e) = st.mkdir_once.remove(path) {
                return Err(err(e));
            }
            if st.dirs.contains(path) {
                return Err(err(libc::EEXIST));
            }
            if !path.parent().is_some_and(|p| st.dirs.contains(p)) {
                return Err(err(libc::ENOENT));
            }
            st.dirs.insert(path.to_path_buf());
            st.ops.push(Op::Mkdir(path.to_path_buf()));
            Ok(())
        }
        fn rmdir(&self, path: &Path) -> io::Result<()> {
            let mut st = self.state.lock().unwrap();
            if let Some(e) = st.rmdir_err.get(path) {
                return Err(err(*e));
            }
            if !st.dirs.contains(path) {
                return Err(err(libc::ENOENT));
            }
            if st.dirs.iter().any(|d| d.parent() == Some(path)) {
                return Err(err(libc::EBUSY));
            }
            st.dirs.remove(path);
            st.marked.remove(path);
            let files: Vec<PathBuf> = st
                .files
                .keys()
                .filter(|f| f.parent() == Some(path))
                .cloned()
                .collect();
            for f in files {
                st.files.remove(&f);
            }
            st.ops.push(Op::Rmdir(path.to_path_buf()));
            Ok(())
        }
        fn mkdir_jail(&self, path: &Path) -> io::Result<()> {
            self.mkdir(path)?;
            self.state.lock().unwrap().marked.insert(path.to_path_buf());
            Ok(())
        }
        fn is_marked_jail(&self, path: &Path) -> bool {
            let st = self.state.lock().unwrap();
            st.dirs.contains(path) && st.marked.contains(path)
        }
        fn try_lock_dir(&self, path: &Path) -> io::Result<Option<DirLock>> {
            let st = self.state.lock().unwrap();
            if !st.dirs.contains(path) {
                return Err(err(libc::ENOENT));
            }
            Ok((!st.locked.contains(path)).then(DirLock::none))
        }
        fn subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
            let st = self.state.lock().unwrap();
            Ok(st
                .dirs
                .iter()
                .filter(|d| d.parent() == Some(path))
                .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
                .collect())
        }
        fn fs_type(&self, path: &Path) -> io::Result<i64> {
            let st = self.state.lock().unwrap();
            st.fs_types
                .get(path)
                .copied()
                .ok_or_else(|| err(libc::ENOENT))
        }
        fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
            Ok(path.to_path_buf())
        }
        fn kill(&self, pid: i32) -> io::Result<()> {
            self.state.lock().unwrap().ops.push(Op::Kill(pid));
            Ok(())
        }
        fn getpid(&self) -> i32 {
            self.pid
        }
        fn pause(&self) {}
    }
}
