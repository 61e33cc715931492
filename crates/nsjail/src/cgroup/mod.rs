//! cgroup resource control (nsjail's `cgroup_*` and `cgroupv2_*` fields).
//!
//! Decided once at supervisor start ([`Cgroups::setup`]): cgroup v2 when the
//! config asks for it (or `detect_cgroupv2` finds it) and the v2 hierarchy
//! can provide every requested limit, else v1 (one warning saying why), else
//! an error naming the limit. Then per jail ([`Cgroups::create_for`]), from
//! the parent right after clone: the directories, the limits, the pid moved
//! in. After the jail is reaped: [`JailCgroup::stats`], then
//! [`JailCgroup::remove`].
//!
//! Differences from nsjail, on purpose:
//! * missing v1 parent directories are created (and removed again when we
//!   created them and they are empty) instead of failing with exit 255;
//! * a v2 parent with processes (no-internal-process rule) is handled by
//!   moving only nsjail into `NSJAIL_SELF.<pid>`, and [`Cgroups::teardown`]
//!   moves it back and removes that directory;
//! * limits are written before the pid is moved in (v2 too);
//! * `cgroup.kill` / SIGKILL of every member on [`JailCgroup::kill_all`];
//! * a jail never adopts an existing directory: `NSJAIL.<pid>` and
//!   `NSJAIL_SELF.<pid>` are made with mode 0701 ([`fs::JAIL_MARK_MODE`]) and
//!   held under an exclusive `flock(2)` while in use. An existing one that is
//!   marked, unlocked and empty is the leftover of an nsjail that died
//!   (SIGKILL): it is removed and made afresh; anything else is refused
//!   ([`CgroupError::Exists`]). Each run also removes such leftovers it
//!   finds in its parent directories ([`Cgroups::setup`]).
//!
//! All filesystem access goes through [`CgroupFs`], so the decisions are
//! unit-tested on an in-memory fake.

mod error;
pub mod fs;
pub mod parse;
pub use nsjail_config::spec::cgroup as plan;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use error::CgroupError;
pub use fs::{CgroupFs, DirLock, RealFs, CGROUP2_SUPER_MAGIC, JAIL_MARK_MODE};
pub use plan::{CgroupRequest as Request, V1Controller};

use error::hint_for;
use plan::{jail_name, V1Plan, V2Plan};

/// What the kernel accounted for one jail (read after it was reaped).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupStats {
    /// The cgroup OOM killer killed a process of the jail (any process:
    /// `oom_kills > 0`).
    pub oom_killed: bool,
    /// How many processes of the jail the OOM killer killed (v2
    /// `memory.events oom_kill`, v1 `memory.oom_control oom_kill`).
    pub oom_kills: Option<u64>,
    /// Peak memory use in bytes (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`).
    pub mem_peak_bytes: Option<u64>,
    /// CPU time in µs (v2 `cpu.stat usage_usec`, v1 `cpuacct.usage` when cpuacct
    /// shares the cpu hierarchy).
    pub cpu_usage_us: Option<u64>,
    /// Peak number of tasks (`pids.peak`, where the kernel has it).
    pub pids_peak: Option<u64>,
    /// User CPU time of every process the jail had, in µs (v2 `cpu.stat
    /// user_usec`, which exists without the cpu controller; v1
    /// `cpuacct.stat user` in USER_HZ ticks when cpuacct shares the cpu
    /// hierarchy).
    pub cpu_user_us: Option<u64>,
    /// System CPU time likewise (`system_usec`, `cpuacct.stat system`).
    pub cpu_sys_us: Option<u64>,
}

/// The cgroup set-up of a supervisor.
#[derive(Debug)]
pub struct Cgroups {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    fs: Arc<dyn CgroupFs>,
    backend: Backend,
    /// v1 parent directories this supervisor created and that still exist.
    /// The lock also serialises parent creation against parent removal.
    created: Mutex<BTreeSet<PathBuf>>,
    /// v2: nsjail moved itself into `NSJAIL_SELF.<pid>`.
    self_move: Mutex<Option<SelfMove>>,
}

#[derive(Debug)]
enum Backend {
    V1(Vec<V1Plan>),
    V2 { parent: PathBuf, plan: V2Plan },
}

#[derive(Debug)]
struct SelfMove {
    parent: PathBuf,
    dir: PathBuf,
    enabled: Vec<&'static str>,
    _lock: DirLock,
}

/// Why one cgroup version cannot be used: (limit fields, reason).
type Refusal = (String, String);

fn errno_is(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

impl Cgroups {
    /// Decides the cgroup version for the jail's request and prepares the
    /// v2 parent.
    pub fn setup(req: &Request) -> Result<Cgroups, CgroupError> {
        Cgroups::setup_with(req.clone(), Arc::new(RealFs))
    }

    /// [`Cgroups::setup`] on an explicit request and filesystem.
    pub fn setup_with(req: Request, fs: Arc<dyn CgroupFs>) -> Result<Cgroups, CgroupError> {
        if !req.is_active() {
            log::debug!("No cgroup limit requested: jails get no cgroup");
            return Ok(Cgroups { shared: None });
        }
        let want_v2 = if req.detect_v2 {
            let t = fs.fs_type(&req.v2_mount);
            let is_v2 = matches!(t, Ok(CGROUP2_SUPER_MAGIC));
            log::debug!(
                "detect_cgroupv2: '{}' is {}a cgroup2 filesystem ({t:?}): using cgroup v{}",
                req.v2_mount.display(),
                if is_v2 { "" } else { "not " },
                if is_v2 { 2 } else { 1 }
            );
            is_v2
        } else {
            req.use_v2
        };
        let (first_v2, second_v2) = if want_v2 {
            (true, false)
        } else {
            (false, true)
        };
        let first = try_backend(&*fs, &req, first_v2);
        let (backend, self_move) = match first {
            Ok(b) => b,
            Err((lim1, why1)) => match try_backend(&*fs, &req, second_v2) {
                Ok(b) => {
                    log::warn!(
                        "cgroup v{} cannot provide {lim1}: {why1}; using cgroup v{} instead",
                        if first_v2 { 2 } else { 1 },
                        if second_v2 { 2 } else { 1 },
                    );
                    b
                }
                Err((lim2, why2)) => {
                    let limit = if lim1 == lim2 {
                        lim1
                    } else {
                        format!("{lim1} / {lim2}")
                    };
                    let (v2, v1) = if first_v2 { (why1, why2) } else { (why2, why1) };
                    return Err(CgroupError::Unavailable { limit, v2, v1 });
                }
            },
        };
        Ok(Cgroups::from_backend(fs, backend, self_move))
    }

    /// A v2 set-up at `parent` without detection or fallback, which gives each
    /// jail a cgroup even when `req` has no limit (accounting, `cgroup.kill`).
    /// Used by tests and the VM harness.
    pub fn v2_forced(
        parent: &Path,
        req: Request,
        fs: Arc<dyn CgroupFs>,
    ) -> Result<Cgroups, CgroupError> {
        let req = Request {
            v2_mount: parent.to_path_buf(),
            ..req
        };
        match prepare_v2(&*fs, &req) {
            Ok((plan, sm)) => Ok(Cgroups::from_backend(
                fs,
                Backend::V2 {
                    parent: req.v2_mount.clone(),
                    plan,
                },
                sm,
            )),
            Err((limit, v2)) => Err(CgroupError::Unavailable {
                limit: if limit.is_empty() {
                    "(none)".into()
                } else {
                    limit
                },
                v2,
                v1: "not tried (v2 forced)".into(),
            }),
        }
    }

    fn from_backend(fs: Arc<dyn CgroupFs>, backend: Backend, sm: Option<SelfMove>) -> Cgroups {
        let shared = Shared {
            fs,
            backend,
            created: Mutex::new(BTreeSet::new()),
            self_move: Mutex::new(sm),
        };
        match &shared.backend {
            Backend::V1(plans) => {
                for p in plans {
                    shared.sweep(&p.parent_dir());
                }
            }
            Backend::V2 { parent, .. } => shared.sweep(parent),
        }
        Cgroups {
            shared: Some(Arc::new(shared)),
        }
    }

    /// Any cgroup is created for jails.
    pub fn is_active(&self) -> bool {
        self.shared.is_some()
    }

    /// 1 or 2 when active.
    pub fn version(&self) -> Option<u8> {
        self.shared.as_ref().map(|s| match s.backend {
            Backend::V1(_) => 1,
            Backend::V2 { .. } => 2,
        })
    }

    /// Creates the jail's cgroup(s), writes the limits, moves `pid` in.
    /// Inactive set-ups return an inert [`JailCgroup`].
    pub fn create_for(&self, pid: i32) -> Result<JailCgroup, CgroupError> {
        let Some(shared) = &self.shared else {
            return Ok(JailCgroup::inert(pid));
        };
        let mut jail = JailCgroup {
            shared: Some(shared.clone()),
            pid,
            dirs: Vec::new(),
            locks: Vec::new(),
            removed: false,
        };
        match &shared.backend {
            Backend::V1(plans) => shared.create_v1(plans, &mut jail)?,
            Backend::V2 { parent, plan } => shared.create_v2(parent, plan, &mut jail)?,
        }
        Ok(jail)
    }

    /// Undoes the v2 self-move (disables the controllers nsjail enabled in
    /// the parent, moves nsjail back, removes `NSJAIL_SELF.<pid>`). Call it
    /// once every jail cgroup is removed, before exiting; also run on drop.
    pub fn teardown(&self) {
        if let Some(s) = &self.shared {
            s.undo_self_move();
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Tries one version. Returns the backend or why it cannot be used.
fn try_backend(
    fs: &dyn CgroupFs,
    req: &Request,
    v2: bool,
) -> Result<(Backend, Option<SelfMove>), Refusal> {
    if v2 {
        let (plan, sm) = prepare_v2(fs, req)?;
        Ok((
            Backend::V2 {
                parent: req.v2_mount.clone(),
                plan,
            },
            sm,
        ))
    } else {
        Ok((Backend::V1(probe_v1(fs, req)?), None))
    }
}

/// Checks that each requested v1 controller's mount is a v1 hierarchy
/// carrying that controller.
fn probe_v1(fs: &dyn CgroupFs, req: &Request) -> Result<Vec<V1Plan>, Refusal> {
    let plans = req.v1_plan();
    let mounts = fs
        .mountinfo()
        .map(|t| parse::parse_mountinfo(&t))
        .map_err(|e| {
            (
                req.describe(),
                format!("cannot read /proc/self/mountinfo: {e}"),
            )
        })?;
    for p in &plans {
        let ctl = p.controller.name();
        let field = format!("cgroup_{}_mount", if ctl == "memory" { "mem" } else { ctl });
        let canon = fs.canonicalize(&p.mount).map_err(|e| {
            (
                p.limit.clone(),
                format!(
                    "the {ctl} hierarchy '{}' ({field}) is not there: {e}; mount a v1 {ctl} \
                     hierarchy there or set {field}",
                    p.mount.display()
                ),
            )
        })?;
        match parse::mount_of(&mounts, &canon) {
            Some(m) if m.is_v1_with(ctl) => {}
            other => {
                let what = other
                    .map(|m| format!("{} mounted at '{}'", m.fstype, m.mount_point.display()))
                    .unwrap_or_else(|| "no mount".into());
                return Err((
                    p.limit.clone(),
                    format!(
                        "'{}' ({field}) is not a cgroup v1 hierarchy with the {ctl} controller \
                         (it is on {what}); mount one there or set {field}",
                        p.mount.display()
                    ),
                ));
            }
        }
    }
    Ok(plans)
}

/// Checks the v2 parent and enables the needed controllers in its
/// `cgroup.subtree_control`, moving nsjail out of it if the no-internal-process
/// rule requires. Only writes when every needed controller is available there.
fn prepare_v2(fs: &dyn CgroupFs, req: &Request) -> Result<(V2Plan, Option<SelfMove>), Refusal> {
    let plan = req.v2_plan();
    let mount = &req.v2_mount;
    let md = mount.display();
    let all = req.describe();
    if !plan.unsupported.is_empty() {
        return Err((
            plan.unsupported.join(", "),
            "net_cls has no cgroup v2 equivalent".into(),
        ));
    }
    match fs.fs_type(mount) {
        Ok(CGROUP2_SUPER_MAGIC) => {}
        Ok(t) => {
            return Err((
                all,
                format!(
                    "'{md}' (cgroupv2_mount) is not a cgroup2 filesystem (statfs type {t:#x}); \
                     set cgroupv2_mount to a cgroup2 mount"
                ),
            ))
        }
        Err(e) => return Err((all, format!("statfs('{md}') (cgroupv2_mount) failed: {e}"))),
    }
    let read_list = |name: &str| -> Result<Vec<String>, Refusal> {
        fs.read(&mount.join(name))
            .map(|t| parse::controller_list(&t))
            .map_err(|e| (req.describe(), format!("cannot read '{md}/{name}': {e}")))
    };
    let available = read_list("cgroup.controllers")?;
    let missing: Vec<&str> = plan
        .controllers
        .iter()
        .copied()
        .filter(|c| !available.iter().any(|a| a == c))
        .collect();
    if !missing.is_empty() {
        return Err((
            all,
            format!(
                "'{md}/cgroup.controllers' offers [{}] but the {} controller(s) are needed \
                 (on hybrid hosts they are bound to cgroup v1)",
                available.join(" "),
                missing.join(", ")
            ),
        ));
    }
    let enabled = read_list("cgroup.subtree_control")?;
    let to_enable: Vec<&'static str> = plan
        .controllers
        .iter()
        .copied()
        .filter(|c| !enabled.iter().any(|a| a == c))
        .collect();
    if to_enable.is_empty() {
        return Ok((plan, None));
    }
    let subtree = mount.join("cgroup.subtree_control");
    let val = to_enable
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    log::info!("Setting '{}' to '{val}'", subtree.display());
    let e = match fs.write(&subtree, &val) {
        Ok(()) => return Ok((plan, None)),
        Err(e) => e,
    };
    if !errno_is(&e, libc::EBUSY) {
        return Err((
            all,
            format!(
                "writing '{val}' to '{}' failed: {e}; {}",
                subtree.display(),
                hint_for(&e, "the cgroup v2 parent")
            ),
        ));
    }
    // No-internal-process rule: the parent has processes. If it is only us,
    // move into a leaf child and retry.
    let me = fs.getpid();
    let procs = fs
        .read(&mount.join("cgroup.procs"))
        .map(|t| parse::pid_list(&t))
        .unwrap_or_default();
    let others: Vec<String> = procs
        .iter()
        .filter(|p| **p != me)
        .take(10)
        .map(|p| p.to_string())
        .collect();
    if !procs.contains(&me) || !others.is_empty() {
        return Err((
            all,
            format!(
                "writing '{val}' to '{}' failed: {e} (no-internal-process rule): '{md}' holds \
                 other processes [{}]; set cgroupv2_mount to a cgroup with no processes",
                subtree.display(),
                others.join(" ")
            ),
        ));
    }
    let dir = mount.join(format!("NSJAIL_SELF.{me}"));
    log::info!(
        "nsjail is moving itself into '{}' (cgroup v2 no-internal-process rule); it moves back at exit",
        dir.display()
    );
    let lock = match fresh_dir(fs, &dir) {
        Ok(l) => l,
        Err(Fresh::Io(e)) => return Err((all, format!("mkdir('{}') failed: {e}", dir.display()))),
        Err(Fresh::Taken(why)) => {
            return Err((
                all,
                format!(
                    "'{}' exists and is not ours to reuse: {why}; remove it once its \
                     cgroup.procs is empty",
                    dir.display()
                ),
            ))
        }
    };
    let undo = |moved: bool| {
        if moved {
            let _ = fs.write(&mount.join("cgroup.procs"), &me.to_string());
        }
        let _ = fs.rmdir(&dir);
    };
    if let Err(e) = fs.write(&dir.join("cgroup.procs"), &me.to_string()) {
        undo(false);
        return Err((
            all,
            format!("moving nsjail into '{}' failed: {e}", dir.display()),
        ));
    }
    if let Err(e) = fs.write(&subtree, &val) {
        undo(true);
        return Err((
            all,
            format!(
                "writing '{val}' to '{}' failed even with nsjail moved out: {e}; {}",
                subtree.display(),
                hint_for(&e, "the cgroup v2 parent")
            ),
        ));
    }
    Ok((
        plan,
        Some(SelfMove {
            parent: mount.clone(),
            dir,
            enabled: to_enable,
            _lock: lock,
        }),
    ))
}

/// Why [`fresh_dir`] failed.
enum Fresh {
    /// mkdir or the lock failed (ENOENT: the parent is gone).
    Io(io::Error),
    /// The directory exists and is not a leftover we may remove: why.
    Taken(String),
}

/// Names of the directories we create in a cgroup parent: `NSJAIL.<pid>`
/// (as nsjail) and `NSJAIL_SELF.<pid>`.
fn is_jail_dir_name(name: &str) -> bool {
    name.strip_prefix("NSJAIL.")
        .or_else(|| name.strip_prefix("NSJAIL_SELF."))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Creates `dir` afresh, marked ([`JAIL_MARK_MODE`]) and locked. An existing
/// `dir` is never adopted: the leftover of an nsjail that is gone
/// ([`reclaim`]) is removed and made again, anything else is refused.
fn fresh_dir(fs: &dyn CgroupFs, dir: &Path) -> Result<DirLock, Fresh> {
    let mut last = io::Error::from_raw_os_error(libc::EEXIST);
    for _ in 0..5 {
        match fs.mkdir_jail(dir) {
            Ok(()) => match fs.lock_dir(dir) {
                Ok(l) => return Ok(l),
                // A sweeping run removed it between mkdir and lock: again.
                Err(e) if errno_is(&e, libc::ENOENT) => last = e,
                Err(e) => {
                    let _ = fs.rmdir(dir);
                    return Err(Fresh::Io(e));
                }
            },
            Err(e) if errno_is(&e, libc::EEXIST) => {
                reclaim(fs, dir).map_err(Fresh::Taken)?;
                log::warn!(
                    "Removed the stale cgroup '{}' left by an nsjail that is gone; making it afresh",
                    dir.display()
                );
            }
            Err(e) => return Err(Fresh::Io(e)),
        }
    }
    Err(Fresh::Io(last))
}

/// Removes `dir` when it is provably a leftover of ours: it carries our
/// mark, no live process holds its lock, and the kernel lets it go (rmdir
/// fails while it has processes or child cgroups). Otherwise: why not.
fn reclaim(fs: &dyn CgroupFs, dir: &Path) -> Result<(), String> {
    if !fs.is_marked_jail(dir) {
        return Err(format!(
            "it was not made by this nsjail (its mode is not {JAIL_MARK_MODE:o})"
        ));
    }
    let _lock = match fs.try_lock_dir(dir) {
        Ok(Some(l)) => l,
        Ok(None) => return Err("a running nsjail holds it".into()),
        Err(e) => return Err(format!("opening it to check its owner failed: {e}")),
    };
    match fs.rmdir(dir) {
        Ok(()) => Ok(()),
        Err(e) if errno_is(&e, libc::EBUSY) || errno_is(&e, libc::ENOTEMPTY) => {
            Err(format!("it still holds processes or child cgroups ({e})"))
        }
        Err(e) => Err(format!("rmdir failed: {e}")),
    }
}

impl Shared {
    fn create_v1(&self, plans: &[V1Plan], jail: &mut JailCgroup) -> Result<(), CgroupError> {
        let pid = jail.pid;
        for p in plans {
            let dir = p.jail_dir(pid);
            let lock = self.mkdir_with_parents(p, &dir)?;
            jail.dirs.push((Some(p.controller), dir.clone()));
            jail.locks.push(lock);
            for (file, value) in &p.writes {
                self.write_limit(&dir, file, value, &p.limit)?;
            }
        }
        // Move the pid in only once every directory is ready, so a failure
        // above leaves empty directories that removal can always rmdir.
        for (i, p) in plans.iter().enumerate() {
            let dir = p.jail_dir(pid);
            if let Err(e) = self.fs.write(&dir.join("tasks"), &pid.to_string()) {
                self.move_back_v1(&plans[..i], pid);
                return Err(CgroupError::Write {
                    path: dir.join("tasks"),
                    value: pid.to_string(),
                    hint: hint_for(&e, &dir.display().to_string()),
                    limit: p.limit.clone(),
                    source: e,
                });
            }
        }
        Ok(())
    }

    /// On a failed move, puts `pid` back into nsjail's own cgroups of the
    /// hierarchies it was already moved in, so those directories can go.
    fn move_back_v1(&self, moved: &[V1Plan], pid: i32) {
        let (Ok(pc), Ok(mi)) = (self.fs.proc_self_cgroup(), self.fs.mountinfo()) else {
            return;
        };
        let mounts = parse::parse_mountinfo(&mi);
        for p in moved {
            let canon = self.fs.canonicalize(&p.mount).unwrap_or(p.mount.clone());
            if let Some(own) =
                parse::own_cgroup_dir(&pc, &mounts, &canon, Some(p.controller.name()))
            {
                let _ = self.fs.write(&own.join("tasks"), &pid.to_string());
            }
        }
    }

    fn mkdir_with_parents(&self, p: &V1Plan, dir: &Path) -> Result<DirLock, CgroupError> {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        let mut attempt = 0;
        loop {
            for parent in p.parent_chain() {
                match self.fs.mkdir_parent(&parent) {
                    Ok(()) => {
                        log::info!(
                            "Created missing cgroup parent '{}' (removed again when empty)",
                            parent.display()
                        );
                        created.insert(parent);
                    }
                    // Made by another nsjail run: whoever leaves last removes it.
                    Err(e) if errno_is(&e, libc::EEXIST) => {
                        if self.fs.is_marked_parent(&parent) {
                            created.insert(parent);
                        }
                    }
                    Err(e) => {
                        return Err(CgroupError::Mkdir {
                            hint: hint_for(&e, &p.mount.display().to_string()),
                            path: parent,
                            limit: p.limit.clone(),
                            source: e,
                        })
                    }
                }
            }
            match fresh_dir(&*self.fs, dir) {
                Ok(l) => return Ok(l),
                Err(Fresh::Taken(why)) => {
                    return Err(CgroupError::Exists {
                        path: dir.to_path_buf(),
                        limit: p.limit.clone(),
                        why,
                    })
                }
                // Another nsjail removed a shared parent in between: recreate it.
                Err(Fresh::Io(e)) if errno_is(&e, libc::ENOENT) && attempt < 5 => attempt += 1,
                Err(Fresh::Io(e)) => {
                    return Err(CgroupError::Mkdir {
                        hint: hint_for(&e, &p.parent_dir().display().to_string()),
                        path: dir.to_path_buf(),
                        limit: p.limit.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    fn write_limit(
        &self,
        dir: &Path,
        file: &str,
        value: &str,
        limit: &str,
    ) -> Result<(), CgroupError> {
        log::info!("Setting '{file}' to '{value}'");
        let path = dir.join(file);
        self.fs.write(&path, value).map_err(|e| CgroupError::Write {
            hint: if errno_is(&e, libc::ENOENT) && (file.contains("memsw") || file.contains("swap"))
            {
                "this kernel has no swap accounting (boot with swapaccount=1, CONFIG_MEMCG_SWAP); \
                 or drop cgroup_mem_swap_max/cgroup_mem_memsw_max"
                    .to_string()
            } else {
                hint_for(&e, &format!("the file {file}"))
            },
            path,
            value: value.to_string(),
            limit: limit.to_string(),
            source: e,
        })
    }

    fn create_v2(
        &self,
        parent: &Path,
        plan: &V2Plan,
        jail: &mut JailCgroup,
    ) -> Result<(), CgroupError> {
        let pid = jail.pid;
        let dir = parent.join(jail_name(pid));
        let limit = if plan.writes.is_empty() {
            "cgroup v2 accounting".to_string()
        } else {
            plan.writes
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match fresh_dir(&*self.fs, &dir) {
            Ok(l) => jail.locks.push(l),
            Err(Fresh::Taken(why)) => {
                return Err(CgroupError::Exists {
                    path: dir,
                    limit,
                    why,
                })
            }
            Err(Fresh::Io(e)) => {
                return Err(CgroupError::Mkdir {
                    hint: hint_for(&e, &format!("'{}'", parent.display())),
                    path: dir,
                    limit,
                    source: e,
                })
            }
        }
        jail.dirs.push((None, dir.clone()));
        for (file, value) in &plan.writes {
            self.write_limit(&dir, file, value, &limit)?;
        }
        let procs = dir.join("cgroup.procs");
        self.fs
            .write(&procs, &pid.to_string())
            .map_err(|e| CgroupError::Write {
                hint: hint_for(&e, &dir.display().to_string()),
                path: procs,
                value: pid.to_string(),
                limit,
                source: e,
            })
    }

    /// Removes the orphaned jail cgroups in `parent`: named `NSJAIL.<n>` or
    /// `NSJAIL_SELF.<n>`, marked as ours, locked by nobody (their nsjail is
    /// gone), empty. Never touches anything else.
    fn sweep(&self, parent: &Path) {
        let Ok(names) = self.fs.subdirs(parent) else {
            return;
        };
        for n in names.iter().filter(|n| is_jail_dir_name(n)) {
            let d = parent.join(n);
            if !self.fs.is_marked_jail(&d) {
                continue;
            }
            match reclaim(&*self.fs, &d) {
                Ok(()) => log::info!(
                    "Removed the orphaned cgroup '{}' of an nsjail that is gone",
                    d.display()
                ),
                Err(why) => log::debug!("Leaving cgroup '{}': {why}", d.display()),
            }
        }
    }

    /// SIGKILLs every process listed in `dir/cgroup.procs`, a few rounds.
    fn kill_members(&self, dir: &Path) {
        for _ in 0..20 {
            let pids = self
                .fs
                .read(&dir.join("cgroup.procs"))
                .map(|t| parse::pid_list(&t))
                .unwrap_or_default();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                let _ = self.fs.kill(p);
            }
            self.fs.pause();
        }
    }

    /// rmdir, retrying while the members drain; kills leftovers once.
    fn rmdir_jail_dir(&self, dir: &Path) -> Result<(), CgroupError> {
        const ATTEMPTS: u32 = 200;
        for attempt in 0..ATTEMPTS {
            match self.fs.rmdir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if errno_is(&e, libc::ENOENT) => return Ok(()),
                Err(e) if errno_is(&e, libc::EBUSY) && attempt + 1 < ATTEMPTS => {
                    if attempt == 20 {
                        log::debug!("'{}' still busy: killing its members", dir.display());
                        self.kill_members(dir);
                    }
                    self.fs.pause();
                }
                Err(e) => {
                    return Err(CgroupError::Rmdir {
                        path: dir.to_path_buf(),
                        source: e,
                    })
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Removes the parents of `p` that this supervisor created, deepest
    /// first, stopping at the first one still in use.
    fn remove_created_parents(&self, p: &V1Plan) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        for parent in p.parent_chain().into_iter().rev() {
            if !created.contains(&parent) {
                return;
            }
            match self.fs.rmdir(&parent) {
                Ok(()) => {
                    log::debug!("Removed cgroup parent '{}'", parent.display());
                    created.remove(&parent);
                }
                Err(e) if errno_is(&e, libc::ENOENT) => {
                    created.remove(&parent);
                }
                // In use by another jail (ours or another nsjail's): its owner or we, later.
                Err(e) if errno_is(&e, libc::EBUSY) || errno_is(&e, libc::ENOTEMPTY) => return,
                Err(e) => {
                    log::warn!(
                        "rmdir('{}') of a cgroup parent failed: {e}",
                        parent.display()
                    );
                    return;
                }
            }
        }
    }

    fn undo_self_move(&self) {
        let mut guard = self.self_move.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sm) = guard.take() else { return };
        let name = sm.dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let others: Vec<String> = self
            .fs
            .subdirs(&sm.parent)
            .unwrap_or_default()
            .into_iter()
            .filter(|d| Some(d) != name.as_ref())
            .collect();
        let leave = |why: String| {
            log::warn!(
                "Leaving nsjail's own cgroup '{}' behind: {why}; remove it after nsjail exits",
                sm.dir.display()
            );
        };
        if !others.is_empty() {
            return leave(format!(
                "'{}' has other child cgroups [{}] that may use the controllers nsjail enabled",
                sm.parent.display(),
                others.join(" ")
            ));
        }
        let subtree = sm.parent.join("cgroup.subtree_control");
        let val = sm
            .enabled
            .iter()
            .map(|c| format!("-{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        if let Err(e) = self.fs.write(&subtree, &val) {
            return leave(format!(
                "writing '{val}' to '{}' failed: {e}",
                subtree.display()
            ));
        }
        let me = self.fs.getpid().to_string();
        let procs = sm.parent.join("cgroup.procs");
        if let Err(e) = self.fs.write(&procs, &me) {
            return leave(format!(
                "moving back into '{}' failed: {e}",
                procs.display()
            ));
        }
        match self.fs.rmdir(&sm.dir) {
            Ok(()) => log::debug!("Removed '{}'", sm.dir.display()),
            Err(e) => leave(format!("rmdir failed: {e}")),
        }
    }
}

/// The cgroup(s) of one jail.
#[derive(Debug)]
pub struct JailCgroup {
    shared: Option<Arc<Shared>>,
    pid: i32,
    /// Directories created, in creation order (controller for v1, `None` for v2).
    dirs: Vec<(Option<V1Controller>, PathBuf)>,
    /// Their locks (ours while the jail's cgroups are in use).
    locks: Vec<DirLock>,
    removed: bool,
}

impl JailCgroup {
    fn inert(pid: i32) -> JailCgroup {
        JailCgroup {
            shared: None,
            pid,
            dirs: Vec::new(),
            locks: Vec::new(),
            removed: true,
        }
    }

    /// The jail's pid (as given to [`Cgroups::create_for`]).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The cgroup directories of this jail.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn dir_of(&self, c: Option<V1Controller>) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(x, _)| *x == c)
            .map(|(_, d)| d.as_path())
    }

    /// Accounting; call after the jail was reaped, before [`JailCgroup::remove`].
    pub fn stats(&self) -> CgroupStats {
        let Some(s) = &self.shared else {
            return CgroupStats::default();
        };
        let read = |dir: &Path, file: &str| s.fs.read(&dir.join(file)).ok();
        let mut st = CgroupStats::default();
        match &s.backend {
            Backend::V2 { .. } => {
                if let Some(d) = self.dir_of(None) {
                    st.oom_kills =
                        read(d, "memory.events").and_then(|t| parse::keyed_u64(&t, "oom_kill"));
                    st.oom_killed = st.oom_kills.is_some_and(|n| n > 0);
                    st.mem_peak_bytes = read(d, "memory.peak").and_then(|t| parse::single_u64(&t));
                    let cpu = read(d, "cpu.stat");
                    let key = |k| cpu.as_deref().and_then(|t| parse::keyed_u64(t, k));
                    st.cpu_usage_us = key("usage_usec");
                    st.cpu_user_us = key("user_usec");
                    st.cpu_sys_us = key("system_usec");
                    st.pids_peak = read(d, "pids.peak").and_then(|t| parse::single_u64(&t));
                }
            }
            Backend::V1(_) => {
                if let Some(d) = self.dir_of(Some(V1Controller::Memory)) {
                    st.oom_kills = read(d, "memory.oom_control")
                        .and_then(|t| parse::keyed_u64(&t, "oom_kill"));
                    st.oom_killed = st.oom_kills.is_some_and(|n| n > 0);
                    st.mem_peak_bytes =
                        read(d, "memory.max_usage_in_bytes").and_then(|t| parse::single_u64(&t));
                }
                if let Some(d) = self.dir_of(Some(V1Controller::Cpu)) {
                    st.cpu_usage_us = read(d, "cpuacct.usage")
                        .and_then(|t| parse::single_u64(&t))
                        .map(|ns| ns / 1000);
                    // USER_HZ is 100 on every Linux ABI: 10 ms a tick.
                    let stat = read(d, "cpuacct.stat");
                    let ticks = |k| stat.as_deref().and_then(|t| parse::keyed_u64(t, k));
                    st.cpu_user_us = ticks("user").map(|t| t * 10_000);
                    st.cpu_sys_us = ticks("system").map(|t| t * 10_000);
                }
                if let Some(d) = self.dir_of(Some(V1Controller::Pids)) {
                    st.pids_peak = read(d, "pids.peak").and_then(|t| parse::single_u64(&t));
                }
            }
        }
        st
    }

    /// Kills every process in the jail's cgroup(s): v2 `cgroup.kill`
    /// (SIGKILL of each member where the kernel lacks it), v1 SIGKILL of each
    /// pid in `cgroup.procs`.
    pub fn kill_all(&self) {
        let Some(s) = &self.shared else { return };
        for (c, dir) in &self.dirs {
            if c.is_none() {
                match s.fs.write(&dir.join("cgroup.kill"), "1") {
                    Ok(()) => continue,
                    Err(e) => log::debug!("cgroup.kill in '{}': {e}", dir.display()),
                }
            }
            s.kill_members(dir);
        }
    }

    /// Removes the jail's directories (retrying while members drain, killing
    /// leftovers) and the parents we created once they are empty.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let Some(s) = self.shared.clone() else {
            return Ok(());
        };
        let mut first_err = None;
        for (_, dir) in self.dirs.iter().rev() {
            if let Err(e) = s.rmdir_jail_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        if let Backend::V1(plans) = &s.backend {
            for p in plans {
                s.remove_created_parents(p);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for JailCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove_inner() {
            log::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests;
