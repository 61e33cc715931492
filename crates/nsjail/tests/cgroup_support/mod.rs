//! Shared helpers of the cgroup integration tests: forked children that wait
//! for a go signal and then allocate, fork or spin, using only raw syscalls
//! (the test process is multi-threaded, so the child must not allocate).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Prints `SKIP <test>: <reason>` (libtest names each test's thread after
/// the test) and returns from the test.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        eprintln!(
            "SKIP {}: {}",
            std::thread::current().name().unwrap_or("unknown_test"),
            format!($($arg)*)
        );
        return;
    }};
}

/// What the child does once released.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Touch this many bytes of anonymous memory, then exit 0.
    Alloc(usize),
    /// Try `n` forks; each grandchild waits until the child is done; exit
    /// code = number of forks that succeeded.
    Forks(u32),
    /// Spin on the CPU for this wall time, then exit 0.
    Spin(Duration),
    /// Block until killed.
    Sleep,
}

/// A forked child blocked on a pipe until [`Child::go`].
#[derive(Debug)]
pub struct Child {
    pub pid: i32,
    go_fd: i32,
    reaped: bool,
}

/// How the child ended, with its CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu: Duration,
    pub wall: Duration,
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

/// Runs in the forked child: raw syscalls only, never returns.
fn child_main(go_rd: i32, action: Action) -> ! {
    let mut b = 0u8;
    // SAFETY: reading one byte into a valid stack byte.
    unsafe { libc::read(go_rd, (&mut b as *mut u8).cast(), 1) };
    let code = match action {
        Action::Alloc(n) => {
            // SAFETY: anonymous private mapping; no existing memory is affected.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    n,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                3
            } else {
                let base = p.cast::<u8>();
                let mut off = 0;
                while off < n {
                    // SAFETY: off < n, inside the mapping just created.
                    unsafe { std::ptr::write_volatile(base.add(off), 1) };
                    off += 4096;
                }
                0
            }
        }
        Action::Forks(n) => {
            let (rd, wr) = pipe_raw();
            let mut ok = 0;
            for _ in 0..n {
                // SAFETY: the grandchild only calls read and _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: raw syscalls on fds we own.
                    unsafe {
                        libc::close(wr);
                        libc::read(rd, (&mut b as *mut u8).cast(), 1);
                        libc::_exit(0);
                    }
                } else if pid > 0 {
                    ok += 1;
                }
            }
            // SAFETY: closing our write end releases the grandchildren; then reap them.
            unsafe {
                libc::close(wr);
                while libc::wait(std::ptr::null_mut()) > 0 {}
            }
            ok
        }
        Action::Spin(d) => {
            let start = now();
            let mut x = 0u64;
            while now().saturating_sub(start) < d.as_nanos() as u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                std::hint::black_box(x);
            }
            0
        }
        Action::Sleep => loop {
            // SAFETY: pause just sleeps until a signal.
            unsafe { libc::pause() };
        },
    };
    // SAFETY: _exit never returns and runs no atexit handlers.
    unsafe { libc::_exit(code) }
}

fn pipe_raw() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array for pipe to fill.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    (fds[0], fds[1])
}

fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Child {
    /// Forks a child that waits for [`Child::go`], then does `action`.
    pub fn spawn(action: Action) -> Child {
        let (rd, wr) = pipe();
        // SAFETY: the child runs only async-signal-safe raw syscalls (child_main).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            child_main(rd, action);
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(rd) };
        Child {
            pid,
            go_fd: wr,
            reaped: false,
        }
    }

    /// Releases the child.
    pub fn go(&self) {
        // SAFETY: writing one byte from a valid buffer to our pipe end.
        let n = unsafe { libc::write(self.go_fd, b"g".as_ptr().cast(), 1) };
        assert_eq!(n, 1);
    }

    /// Waits for the child (after go) and returns how it ended.
    pub fn wait(&mut self) -> Exit {
        let start = Instant::now();
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid out-buffer.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) };
        assert_eq!(rc, self.pid, "wait4: {}", std::io::Error::last_os_error());
        self.reaped = true;
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Exit {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
            wall: start.elapsed(),
        }
    }

    /// The child's cgroup path in the v1 `controller` hierarchy (or v2 for `None`).
    pub fn cgroup(&self, controller: Option<&str>) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid)).ok()?;
        nsjail::cgroup::parse::own_cgroup_path(&text, controller)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: closing our fd; killing and reaping our own child if still there.
        unsafe {
            libc::close(self.go_fd);
            if !self.reaped {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A unique name for a test directory.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "nsjail-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `statfs(path).f_type`.
pub fn fs_type(path: &Path) -> Option<i64> {
    use nsjail::cgroup::CgroupFs;
    nsjail::cgroup::RealFs.fs_type(path).ok()
}

/// Is `dir` a v1 hierarchy with `controller` (per /proc/self/mountinfo)?
pub fn v1_hierarchy(dir: &str, controller: &str) -> bool {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let mounts = nsjail::cgroup::parse::parse_mountinfo(&mi);
    let Ok(canon) = std::fs::canonicalize(dir) else {
        return false;
    };
    nsjail::cgroup::parse::mount_of(&mounts, &canon).is_some_and(|m| m.is_v1_with(controller))
}

/// Our own cgroup path in a v1 hierarchy, relative (no leading `/`).
pub fn own_v1(controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let p = nsjail::cgroup::parse::own_cgroup_path(&text, Some(controller))?;
    Some(PathBuf::from(p.trim_start_matches('/')))
}

/// Asserts none of `paths` exists any more.
pub fn assert_gone(paths: &[PathBuf]) {
    for p in paths {
        assert!(!p.exists(), "left behind: {}", p.display());
    }
}
