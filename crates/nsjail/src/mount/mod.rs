//! The jail's filesystem view.
//!
//! With `CLONE_NEWNS`, in the child's private mount namespace:
//! 1. `/` becomes recursively private;
//! 2. a scratch tmpfs is mounted over an existing host directory (`/tmp`,
//!    else `/mnt`, ...) — only inside this namespace, so nothing is created
//!    on the host and nothing is left behind — and we `pivot_root` into it:
//!    the host tree stays whole at `/oldroot` (bind sources are never hidden
//!    by the scratch mount) and the new root is a 16 MiB tmpfs at `/newroot`;
//! 3. every `mount` entry is applied in order on top of `/newroot`, its
//!    destination resolved as the jail will see it (symlinks followed
//!    relative to the new root, see `path`). Parent directories and the
//!    mount point are created only inside a tmpfs that the jail itself
//!    mounted (the root tmpfs or a `fstype: "tmpfs"` entry): a point that
//!    would have to be created inside a host bind (read-only or not), procfs,
//!    an overlay... is an error naming the path and the fix. So building the
//!    tree never writes to the host;
//! 4. each entry gets its final attributes right after it is mounted — for
//!    binds on every submount too (`attrs`), so a read-only bind of `/` also
//!    makes the host's `/dev/shm` read-only. Entries mounted later on top keep
//!    their own attributes. Read-only tmpfs mounts of our own (and the root
//!    tmpfs, unless `--rw` or something is mounted at `/`) are made read-only
//!    last, after the points inside them have been created;
//! 5. `pivot_root` into `/newroot` and the old tree (scratch + host) is
//!    detached; or, with `no_pivotroot`, `MS_MOVE` + `chroot` (escapable,
//!    warned about). Then `chdir(cwd)`.
//!
//! Without `CLONE_NEWNS` there is no tree: only `chroot(--chroot DIR)`.

mod attrs;
mod error;
mod path;
pub mod plan;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

pub use nsjail_config::spec::{FsSpec, MountEntry as Entry};

use crate::sys;

pub use error::{errno_name, MountError};

use attrs::{Attrs, Strategy};
use path::{dev_of, jail_view, join};
use plan::{Action, AttrsWhen, MountPlan, PlannedMount, RootSwitch};

const OLDROOT: &str = "/oldroot";
const NEWROOT: &str = "/newroot";
const ROOT_TMPFS_OPTS: &str = "size=16777216";
const SCRATCH_OPTS: &str = "size=16777216,mode=0700";
const MOUNTINFO: &str = "/oldroot/proc/self/mountinfo";

/// nsjail's INFO description of a mount entry (`Mount: 'src' -> 'dst'
/// flags:... type:'...' options:'...' dir:...`, flags in bit order as
/// nsjail's mount_flags_str).
pub fn describe(e: &Entry) -> String {
    if e.symlink {
        return format!("Symlink: '{}' -> '{}'", e.src, e.dst);
    }
    let mut bits: libc::c_ulong = e.extra_flags;
    if !e.rw {
        bits |= libc::MS_RDONLY;
    }
    if e.bind && e.content.is_none() {
        bits |= libc::MS_BIND | libc::MS_REC | libc::MS_PRIVATE;
    }
    format!(
        "Mount: '{}' -> '{}' flags:{} type:'{}' options:'{}' dir:{}",
        if e.src.is_empty() && e.content.is_some() {
            "[content]"
        } else {
            &e.src
        },
        e.dst,
        sys::mount_flags_str(bits),
        e.fstype,
        e.options,
        e.is_dir
    )
}

/// A mount we made, for the final attribute pass and for naming the owner
/// of a path.
struct Mounted {
    target: String,
    entry: Entry,
}

/// State while the tree is built (between the two pivots).
struct Builder {
    strategy: Strategy,
    /// st_dev of the tmpfs instances the jail owns (mount points may be
    /// created in them).
    owned: Vec<u64>,
    mounted: Vec<Mounted>,
    /// Owned tmpfs mounts still to be made read-only.
    deferred_ro: Vec<String>,
    dynamic: usize,
    /// Host mount points (under `/oldroot`), read once when first needed.
    host_points: std::cell::OnceCell<Vec<String>>,
}

fn entry_err(e: &Entry, step: impl Into<String>, source: std::io::Error) -> MountError {
    let hint = error::hint(
        source.raw_os_error(),
        e.bind && e.content.is_none(),
        &e.src,
        &e.fstype,
        &e.options,
    );
    MountError::Entry {
        entry: e.summary(),
        step: step.into(),
        source,
        hint,
    }
}

fn no_submounts() -> std::io::Result<Vec<String>> {
    Ok(Vec::new())
}

impl Builder {
    /// The host's mount points, from one read of the mount table (the host
    /// tree under `/oldroot` does not change while the jail is built).
    fn host_points(&self) -> std::io::Result<&[String]> {
        if self.host_points.get().is_none() {
            let mi = std::fs::read_to_string(MOUNTINFO)?;
            let v = attrs::mount_points(&mi)
                .into_iter()
                .filter(|p| p == OLDROOT || p.starts_with("/oldroot/"))
                .collect();
            let _ = self.host_points.set(v);
        }
        Ok(self.host_points.get().map(Vec::as_slice).unwrap_or(&[]))
    }

    /// Which of our mounts holds `dir` (for the host-write error).
    fn owner_of(&self, dir: &str) -> String {
        let best = self
            .mounted
            .iter()
            .rev()
            .filter(|m| dir == m.target || dir.starts_with(&format!("{}/", m.target)))
            .max_by_key(|m| m.target.len());
        match best {
            Some(m) if m.entry.bind && m.entry.content.is_none() => format!(
                "the bind of host '{}' at '{}'",
                m.entry.src,
                jail_view(NEWROOT, &m.target)
            ),
            Some(m) if m.entry.content.is_some() => {
                format!(
                    "the src_content file at '{}'",
                    jail_view(NEWROOT, &m.target)
                )
            }
            Some(m) => format!(
                "the '{}' mount at '{}'",
                m.entry.fstype,
                jail_view(NEWROOT, &m.target)
            ),
            None => "a mount that is not a tmpfs of the jail's own".to_string(),
        }
    }

    /// Refuse to create anything in `dir` unless it is on a tmpfs we own.
    fn check_owned(&self, e: &Entry, dir: &str, name: &str) -> Result<(), MountError> {
        let dev = dev_of(dir)
            .map_err(|err| entry_err(e, format!("stat '{}'", jail_view(NEWROOT, dir)), err))?;
        if self.owned.contains(&dev) {
            return Ok(());
        }
        Err(MountError::HostWrite {
            entry: e.summary(),
            path: jail_view(NEWROOT, &format!("{dir}/{name}")),
            parent: jail_view(NEWROOT, dir),
            owner: self.owner_of(dir),
        })
    }

    /// Create the missing directories of `r` except the last `keep_last`
    /// components; returns the deepest directory.
    fn create_dirs(
        &self,
        e: &Entry,
        existing: &str,
        missing: &[String],
    ) -> Result<String, MountError> {
        let mut cur = existing.to_string();
        for c in missing {
            if c == ".." {
                return Err(MountError::BadDst {
                    entry: e.summary(),
                    dst: jail_view(NEWROOT, &cur),
                    why: "uses '..' below a directory that does not exist: write the path without '..'",
                });
            }
            self.check_owned(e, &cur, c)?;
            let next = format!("{cur}/{c}");
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&next)
                .map_err(|err| {
                    entry_err(e, format!("mkdir '{}'", jail_view(NEWROOT, &next)), err)
                })?;
            cur = next;
        }
        Ok(cur)
    }

    fn symlink(&mut self, e: &Entry) -> Result<(), MountError> {
        let r = path::resolve(NEWROOT, &e.dst, false)
            .map_err(|err| entry_err(e, "resolving the destination", err))?;
        let Some((name, parents)) = r.missing.split_last() else {
            return Err(entry_err(
                e,
                format!("symlink at '{}'", jail_view(NEWROOT, &r.existing)),
                std::io::Error::from_raw_os_error(libc::EEXIST),
            ));
        };
        let dir = self.create_dirs(e, &r.existing, parents)?;
        self.check_owned(e, &dir, name)?;
        let link = format!("{dir}/{name}");
        std::os::unix::fs::symlink(&e.src, &link)
            .map_err(|err| entry_err(e, format!("symlink '{}'", jail_view(NEWROOT, &link)), err))
    }

    /// The mount point of `e`, created if missing.
    fn mount_point(&self, e: &Entry) -> Result<String, MountError> {
        let r = path::resolve(NEWROOT, &e.dst, true)
            .map_err(|err| entry_err(e, "resolving the destination", err))?;
        let Some((name, parents)) = r.missing.split_last() else {
            return Ok(r.existing);
        };
        let dir = self.create_dirs(e, &r.existing, parents)?;
        if name == ".." {
            return Err(MountError::BadDst {
                entry: e.summary(),
                dst: jail_view(NEWROOT, &dir),
                why: "ends in '..' below a directory that does not exist: write the path without '..'",
            });
        }
        self.check_owned(e, &dir, name)?;
        let target = format!("{dir}/{name}");
        let made = if e.is_dir {
            std::fs::DirBuilder::new().mode(0o711).create(&target)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&target)
                .map(|_| ())
        };
        made.map_err(|err| {
            entry_err(
                e,
                format!(
                    "creating the mount point {} '{}'",
                    if e.is_dir { "directory" } else { "file" },
                    jail_view(NEWROOT, &target)
                ),
                err,
            )
        })?;
        Ok(target)
    }

    fn apply(&mut self, e: &Entry, step: &PlannedMount) -> Result<(), MountError> {
        if let Action::Symlink { .. } = step.action {
            return self.symlink(e);
        }
        let target = self.mount_point(e)?;
        let mount_err = |err: sys::SysError| entry_err(e, "mount(2)", err.source);
        let bind_src = if let Some(content) = &e.content {
            self.dynamic += 1;
            let file = format!("/dynamic.{}", self.dynamic);
            std::fs::write(&file, content).map_err(|err| {
                entry_err(e, "writing src_content to the jail's scratch tmpfs", err)
            })?;
            let r = sys::mount(Some(&file), &target, None, libc::MS_BIND, None);
            let _ = std::fs::remove_file(&file);
            r.map_err(mount_err)?;
            None
        } else if e.bind {
            // The source as the host sees it (absolute symlinks relative to
            // the host's root, not to our scratch root); the kernel decides
            // for what we cannot resolve (e.g. /proc/self/fd magic links).
            let src = path::resolve(OLDROOT, &e.src, true)
                .ok()
                .filter(|r| r.missing.is_empty())
                .map(|r| r.existing)
                .unwrap_or_else(|| join(OLDROOT, &e.src));
            sys::mount(
                Some(&src),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .map_err(mount_err)?;
            Some(src)
        } else if let Action::Fresh {
            source,
            fstype,
            data,
            flags,
        } = &step.action
        {
            let fstype = (!fstype.is_empty()).then_some(fstype.as_str());
            let data = (!data.is_empty()).then_some(data.as_str());
            let r = match sys::mount(Some(source), &target, fstype, *flags, data) {
                Err(err) if err.source.raw_os_error() == Some(libc::EPERM) && step.ro => {
                    log::warn!("{err}: read-write failed, trying read-only");
                    sys::mount(Some(source), &target, fstype, flags | libc::MS_RDONLY, data)
                }
                other => other,
            };
            r.map_err(mount_err)?;
            None
        } else {
            None
        };
        let owned = step.owned;
        if owned {
            let dev = dev_of(&target).map_err(|err| entry_err(e, "stat of the new mount", err))?;
            self.owned.push(dev);
        }
        self.mounted.push(Mounted {
            target: target.clone(),
            entry: e.clone(),
        });
        if step.when == AttrsWhen::Deferred {
            // made read-only at the end, once the points inside exist
            self.deferred_ro.push(target);
            return Ok(());
        }
        self.attributes(e, &target, bind_src.as_deref())
    }

    /// Final attributes of a freshly mounted entry.
    fn attributes(
        &self,
        e: &Entry,
        target: &str,
        bind_src: Option<&str>,
    ) -> Result<(), MountError> {
        let recursive = bind_src.is_some();
        let submounts = || -> std::io::Result<Vec<String>> {
            Ok(attrs::bind_submounts(
                self.host_points()?,
                bind_src.unwrap_or(OLDROOT),
                target,
            ))
        };
        let fail = |err: attrs::AttrError| {
            entry_err(
                e,
                format!(
                    "{} on '{}' ({})",
                    if e.rw {
                        "applying nosuid/nodev/noexec"
                    } else {
                        "making it read-only"
                    },
                    jail_view(NEWROOT, &err.path),
                    err.call
                ),
                err.source,
            )
        };
        // Fresh filesystems got nosuid/nodev/noexec from mount(2) itself.
        let extra = if e.bind { e.extra_flags } else { 0 };
        attrs::apply(
            &Attrs {
                target,
                recursive,
                ro: !e.rw,
                extra,
            },
            self.strategy,
            &submounts,
        )
        .map_err(fail)?;
        if e.rw {
            attrs::clear_ro(target, self.strategy).map_err(fail)?;
        }
        Ok(())
    }

    /// Last pass: our read-only tmpfs mounts (the mounts on top of them keep
    /// their own attributes).
    fn finish(&self, root_ro: bool) -> Result<(), MountError> {
        let mut todo = self.deferred_ro.clone();
        if root_ro {
            todo.insert(0, NEWROOT.to_string());
        }
        for t in todo {
            let a = Attrs {
                target: &t,
                recursive: false,
                ro: true,
                extra: 0,
            };
            attrs::apply(&a, self.strategy, &no_submounts).map_err(|err| {
                let e = self.mounted.iter().find(|m| m.target == t);
                match e {
                    Some(m) => entry_err(&m.entry, "making it read-only", err.source),
                    None => MountError::Setup {
                        step: "making the jail's root tmpfs read-only",
                        source: sys::SysError {
                            call: err.call,
                            what: err.path,
                            source: err.source,
                        },
                    },
                }
            })?;
        }
        Ok(())
    }
}

fn scratch_dir() -> Result<&'static str, MountError> {
    ["/tmp", "/mnt", "/run", "/var/tmp", "/dev"]
        .into_iter()
        .find(|d| std::path::Path::new(d).is_dir())
        .ok_or(MountError::NoScratch)
}

/// Build the jail's filesystem view (child, after the uid switch).
pub fn setup(fs: &FsSpec) -> Result<(), MountError> {
    let entries = &fs.mounts;
    if !fs.newns {
        if let Some(dir) = &fs.chroot {
            sys::chroot(dir).map_err(MountError::setup("chroot to --chroot"))?;
            sys::chdir("/").map_err(MountError::setup("chdir('/') after chroot"))?;
        }
        sys::chdir(&fs.cwd)
            .map_err(MountError::setup("changing to the working directory (cwd)"))?;
        return Ok(());
    }
    let plan = MountPlan::of(fs);
    sys::chdir("/").map_err(MountError::setup("chdir('/')"))?;
    sys::mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(MountError::setup("making '/' recursively private"))?;
    let scratch = scratch_dir()?;
    sys::mount(
        None,
        scratch,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(SCRATCH_OPTS),
    )
    .map_err(MountError::setup(
        "mounting the scratch tmpfs (inside the jail's namespace only)",
    ))?;
    sys::chdir(scratch).map_err(MountError::setup("entering the scratch tmpfs"))?;
    for d in ["oldroot", "newroot"] {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(d)
            .map_err(|source| MountError::Setup {
                step: "creating a directory in the scratch tmpfs",
                source: sys::err_from("mkdir", d, source),
            })?;
    }
    sys::mount(None, "newroot", Some("tmpfs"), 0, Some(ROOT_TMPFS_OPTS))
        .map_err(MountError::setup("mounting the jail's root tmpfs"))?;
    sys::pivot_root(".", "oldroot").map_err(MountError::setup("entering the scratch tmpfs"))?;
    sys::chdir("/").map_err(MountError::setup("chdir('/')"))?;

    let root_dev = dev_of(NEWROOT).map_err(|source| MountError::Setup {
        step: "stat of the jail's root tmpfs",
        source: sys::err_from("stat", NEWROOT, source),
    })?;
    let mut b = Builder {
        strategy: Strategy::of(fs.api),
        owned: vec![root_dev],
        mounted: Vec::with_capacity(entries.len()),
        deferred_ro: Vec::new(),
        dynamic: 0,
        host_points: std::cell::OnceCell::new(),
    };
    for step in &plan.steps {
        let e = &entries[step.entry];
        if let Err(err) = b.apply(e, step) {
            if step.mandatory {
                return Err(err);
            }
            log::warn!("{err} (mandatory: false, going on)");
        }
    }
    b.finish(plan.root_ro)?;

    sys::chdir(NEWROOT).map_err(MountError::setup("entering the new root"))?;
    if plan.switch == RootSwitch::MoveAndChroot {
        log::warn!(
            "Using no_pivotroot is escapable when the user possesses relevant capabilities. Use it with care!"
        );
        sys::mount(Some("."), "/", None, libc::MS_MOVE, None).map_err(MountError::setup(
            "moving the new root onto '/' (no_pivotroot)",
        ))?;
        sys::chroot(".").map_err(MountError::setup("chroot into the new root (no_pivotroot)"))?;
    } else {
        sys::pivot_root(".", ".").map_err(MountError::setup("pivot_root into the new root"))?;
        sys::umount2(".", libc::MNT_DETACH).map_err(MountError::setup("detaching the old root"))?;
    }
    sys::chdir("/").map_err(MountError::setup("chdir('/') in the new root"))?;
    sys::chdir(&plan.cwd).map_err(MountError::setup("changing to the working directory (cwd)"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_point_at_the_host_tree() {
        assert_eq!(
            plan::host_options(
                "overlay",
                "lowerdir=/a:/b:rel,upperdir=/u,workdir=/w,userxattr"
            ),
            "lowerdir=/oldroot/a:/oldroot/b:rel,upperdir=/oldroot/u,workdir=/oldroot/w,userxattr"
        );
        assert_eq!(
            plan::host_options("tmpfs", "size=1,lowerdir=/a"),
            "size=1,lowerdir=/a"
        );
    }
}
