//! The mount plan: every decision about the jail's filesystem view that
//! does not need the tree itself — the order of the steps, the implicit
//! mounts (the root tmpfs, nothing else), the flags and when each entry's
//! attributes are applied (at once, or deferred until the mount points
//! inside it exist), which filesystem will hold each mount point and
//! whether we own it (only then may mount points be created there), and
//! how the root is switched. Pure: unit-tested without root; [`super::setup`]
//! carries it out.
//!
//! What depends on the tree (symlinks inside bound host directories that
//! redirect a destination) is decided while applying: the plan's holder is
//! the lexical prediction, which the builder checks again on the real tree.

use super::{FsSpec, OLDROOT};
use crate::mount::path::join;

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A symlink at the destination pointing to `target`.
    Symlink {
        /// The link's content.
        target: String,
    },
    /// A recursive bind of a host path (`MS_BIND|MS_REC`).
    BindHost {
        /// The host path (resolved against the host's root while applying).
        src: String,
    },
    /// A file holding `src_content`, bound from the jail's scratch tmpfs.
    BindContent {
        /// Its size in bytes.
        len: usize,
    },
    /// A fresh filesystem (`mount(source, dst, fstype, flags, data)`).
    Fresh {
        /// The source (`none` for pseudo filesystems, host paths under the
        /// old root).
        source: String,
        /// The filesystem type.
        fstype: String,
        /// mount(2) data, overlayfs directories moved under the old root.
        data: String,
        /// `MS_NOSUID`/`MS_NODEV`/`MS_NOEXEC` given to mount(2) itself.
        flags: libc::c_ulong,
    },
}

/// Where an entry's mount point lies before it is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// The jail's root tmpfs (owned: points may be created).
    RootTmpfs,
    /// An earlier entry's mount (index into [`MountPlan::steps`]).
    Entry(usize),
}

/// When an entry's attributes (read-only, nosuid/nodev/noexec) are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrsWhen {
    /// Right after the mount (binds: on every submount too).
    Now,
    /// After every entry is mounted: a read-only tmpfs of our own, in which
    /// later entries may still need mount points.
    Deferred,
    /// Nothing to set (symlinks).
    Never,
}

/// One entry of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMount {
    /// Index of the entry in [`FsSpec::mounts`].
    pub entry: usize,
    /// The destination as the jail sees it, normalised (`/a/./b/../c` → `/a/c`).
    pub dst: String,
    /// What is mounted.
    pub action: Action,
    /// The mount point is a directory (else a file).
    pub dir: bool,
    /// The filesystem that holds the (missing) mount point.
    pub holder: Holder,
    /// Whether mount points may be created in the holder (a tmpfs or ramfs
    /// the jail mounted itself, or the root tmpfs). When false and the
    /// point does not exist, the entry fails with "would write to the host".
    pub holder_owned: bool,
    /// The mount is read-only.
    pub ro: bool,
    /// Extra `MS_NOSUID`/`MS_NODEV`/`MS_NOEXEC` bits.
    pub extra_flags: libc::c_ulong,
    /// Attributes apply to every submount (binds).
    pub recursive: bool,
    /// When the attributes are applied.
    pub when: AttrsWhen,
    /// Its filesystem is owned by the jail (later points may be created in it).
    pub owned: bool,
    /// A failure aborts the jail.
    pub mandatory: bool,
}

/// How the build namespace's root becomes the jail's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSwitch {
    /// `pivot_root` and detach the old tree (the default).
    PivotRoot,
    /// `MS_MOVE` onto `/` and `chroot` (`no_pivotroot`; escapable).
    MoveAndChroot,
}

/// The whole plan of one jail's filesystem view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The entries to apply, in order (skipped entries are left out).
    pub steps: Vec<PlannedMount>,
    /// The implicit root tmpfs is made read-only at the end (nothing was
    /// mounted over `/` and no `--rw`).
    pub root_ro: bool,
    /// Deferred read-only passes, in order (indices into `steps`).
    pub deferred_ro: Vec<usize>,
    /// How the root is switched.
    pub switch: RootSwitch,
    /// The working directory.
    pub cwd: String,
}

pub use nsjail_config::spec::mount::normalize_dst as normalize;

fn is_within(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.starts_with(&format!("{dir}/"))
}

/// overlayfs options name host directories; during the build the host tree
/// is at `/oldroot`, so absolute paths in them are moved there.
pub fn host_options(fstype: &str, options: &str) -> String {
    if fstype != "overlay" {
        return options.to_string();
    }
    options
        .split(',')
        .map(|o| match o.split_once('=') {
            Some((k, v))
                if matches!(
                    k,
                    "lowerdir" | "upperdir" | "workdir" | "lowerdir+" | "datadir+"
                ) =>
            {
                let dirs: Vec<String> = v
                    .split(':')
                    .map(|d| {
                        if d.starts_with('/') {
                            join(OLDROOT, d)
                        } else {
                            d.to_string()
                        }
                    })
                    .collect();
                format!("{k}={}", dirs.join(":"))
            }
            _ => o.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl MountPlan {
    /// The plan of `fs` (with a mount namespace; without one there is
    /// nothing to plan but `chroot` and `cwd`).
    pub fn of(fs: &FsSpec) -> MountPlan {
        let mut steps: Vec<PlannedMount> = Vec::with_capacity(fs.mounts.len());
        let mut root_replaced = false;
        for (i, e) in fs.mounts.iter().enumerate().filter(|(_, e)| !e.skip) {
            let dst = normalize(&e.dst);
            // The deepest earlier mount (not a symlink) that contains dst;
            // a later one at the same depth wins (it is on top).
            let holder = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| !matches!(s.action, Action::Symlink { .. }))
                .filter(|(_, s)| is_within(&dst, &s.dst) && s.dst != dst)
                .max_by_key(|(k, s)| (s.dst.len(), *k))
                .map(|(k, _)| k);
            let (holder, holder_owned) = match holder {
                Some(k) => (Holder::Entry(k), steps[k].owned),
                None if root_replaced => {
                    // the entry at '/' holds it
                    let k = steps
                        .iter()
                        .rposition(|s| s.dst == "/" && !matches!(s.action, Action::Symlink { .. }))
                        .unwrap_or(0);
                    (Holder::Entry(k), steps.get(k).is_some_and(|s| s.owned))
                }
                None => (Holder::RootTmpfs, true),
            };
            let action = if e.symlink {
                Action::Symlink {
                    target: e.src.clone(),
                }
            } else if let Some(c) = &e.content {
                Action::BindContent { len: c.len() }
            } else if e.bind {
                Action::BindHost { src: e.src.clone() }
            } else {
                Action::Fresh {
                    source: if e.src.starts_with('/') {
                        join(OLDROOT, &e.src)
                    } else if e.src.is_empty() {
                        "none".to_string()
                    } else {
                        e.src.clone()
                    },
                    fstype: e.fstype.clone(),
                    data: host_options(&e.fstype, &e.options),
                    flags: e.extra_flags,
                }
            };
            let owned = e.owned_fs();
            let when = if e.symlink {
                AttrsWhen::Never
            } else if owned && !e.rw {
                AttrsWhen::Deferred
            } else {
                AttrsWhen::Now
            };
            if dst == "/" && !e.symlink {
                root_replaced = true;
            }
            steps.push(PlannedMount {
                entry: i,
                dst,
                recursive: matches!(action, Action::BindHost { .. }),
                action,
                dir: e.is_dir,
                holder,
                holder_owned,
                ro: !e.rw,
                extra_flags: e.extra_flags,
                when,
                owned,
                mandatory: e.mandatory,
            });
        }
        let deferred_ro = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.when == AttrsWhen::Deferred)
            .map(|(k, _)| k)
            .collect();
        MountPlan {
            steps,
            root_ro: !root_replaced && !fs.root_rw,
            deferred_ro,
            switch: if fs.no_pivotroot {
                RootSwitch::MoveAndChroot
            } else {
                RootSwitch::PivotRoot
            },
            cwd: fs.cwd.clone(),
        }
    }

    /// Entries whose mount point the plan predicts must be created in a
    /// filesystem the jail does not own (a host bind, procfs...): they fail
    /// unless the point already exists there. `(step, holder step)`.
    pub fn points_outside_owned(&self) -> Vec<(usize, usize)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.holder_owned)
            .filter_map(|(k, s)| match s.holder {
                Holder::Entry(h) => Some((k, h)),
                Holder::RootTmpfs => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsjail_config::spec::MountEntry;

    fn bind(src: &str, dst: &str, rw: bool) -> MountEntry {
        MountEntry {
            src: src.into(),
            dst: dst.into(),
            fstype: String::new(),
            options: String::new(),
            bind: true,
            rw,
            is_dir: true,
            mandatory: true,
            symlink: false,
            content: None,
            extra_flags: 0,
            skip: false,
        }
    }

    fn fresh(fstype: &str, dst: &str, rw: bool, options: &str) -> MountEntry {
        MountEntry {
            fstype: fstype.into(),
            bind: false,
            src: String::new(),
            options: options.into(),
            ..bind("", dst, rw)
        }
    }

    fn fs(mounts: Vec<MountEntry>) -> FsSpec {
        FsSpec {
            newns: true,
            mounts,
            cwd: "/".into(),
            ..FsSpec::default()
        }
    }

    #[test]
    fn chroot_bind_replaces_the_root_and_proc_comes_last() {
        let p = MountPlan::of(&fs(vec![
            bind("/", "/", false),
            fresh("tmpfs", "/tmp", true, "size=1"),
            fresh("proc", "/proc", false, ""),
        ]));
        let dsts: Vec<&str> = p.steps.iter().map(|s| s.dst.as_str()).collect();
        assert_eq!(dsts, ["/", "/tmp", "/proc"]);
        assert!(!p.root_ro, "the root tmpfs is covered by the chroot bind");
        // /tmp and /proc are created inside the host bind of '/': not owned
        assert_eq!(p.steps[1].holder, Holder::Entry(0));
        assert!(!p.steps[1].holder_owned);
        assert_eq!(p.points_outside_owned(), vec![(1, 0), (2, 0)]);
        assert_eq!(p.steps[0].action, Action::BindHost { src: "/".into() });
        assert!(p.steps[0].recursive && p.steps[0].ro);
        assert_eq!(p.switch, RootSwitch::PivotRoot);
    }

    #[test]
    fn without_chroot_points_are_created_in_the_root_tmpfs_which_ends_read_only() {
        let p = MountPlan::of(&fs(vec![
            bind("/usr", "/usr", false),
            bind("/lib", "/lib", false),
            fresh("proc", "/proc", false, ""),
        ]));
        assert!(p
            .steps
            .iter()
            .all(|s| s.holder == Holder::RootTmpfs && s.holder_owned));
        assert!(p.root_ro);
        assert!(p.points_outside_owned().is_empty());
        let mut rw = fs(vec![bind("/usr", "/usr", false)]);
        rw.root_rw = true;
        assert!(!MountPlan::of(&rw).root_ro, "--rw keeps the root writable");
    }

    #[test]
    fn a_read_only_tmpfs_of_ours_is_made_read_only_after_the_points_inside_it() {
        let p = MountPlan::of(&fs(vec![
            fresh("tmpfs", "/data", false, "size=1m"),
            bind("/etc", "/data/etc", false),
            fresh("tmpfs", "/scratch", true, ""),
        ]));
        assert_eq!(p.steps[0].when, AttrsWhen::Deferred);
        assert_eq!(p.deferred_ro, vec![0]);
        assert_eq!(p.steps[1].holder, Holder::Entry(0));
        assert!(
            p.steps[1].holder_owned,
            "a tmpfs we mounted holds /data/etc"
        );
        assert_eq!(p.steps[1].when, AttrsWhen::Now);
        assert_eq!(p.steps[2].when, AttrsWhen::Now);
        assert!(p.steps[0].owned && !p.steps[1].owned);
    }

    #[test]
    fn the_deepest_earlier_mount_holds_a_point_and_symlinks_hold_nothing() {
        let mut link = bind("/target", "/a/b", true);
        link.symlink = true;
        link.bind = false;
        let p = MountPlan::of(&fs(vec![
            fresh("tmpfs", "/a", true, ""),
            link,
            bind("/srv", "/a/srv", true),
            bind("/srv/x", "/a/srv/x/y", true),
            bind("/other", "/ab", true),
        ]));
        assert_eq!(
            p.steps[1].action,
            Action::Symlink {
                target: "/target".into()
            }
        );
        assert_eq!(p.steps[1].when, AttrsWhen::Never);
        assert_eq!(p.steps[2].holder, Holder::Entry(0));
        assert_eq!(p.steps[3].holder, Holder::Entry(2));
        assert!(!p.steps[3].holder_owned, "inside a host bind");
        assert_eq!(p.steps[4].holder, Holder::RootTmpfs, "/ab is not inside /a");
    }

    #[test]
    fn flags_content_skips_and_paths() {
        let mut content = bind("", "/etc/motd", false);
        content.content = Some(b"hi".to_vec());
        content.is_dir = false;
        let mut skipped = bind("/x", "/x", false);
        skipped.skip = true;
        let mut nosuid = fresh("tmpfs", "/./t/../tmp", true, "");
        nosuid.extra_flags = libc::MS_NOSUID | libc::MS_NODEV;
        let mut over = fresh(
            "overlay",
            "/o",
            true,
            "lowerdir=/a:/b,upperdir=/u,workdir=/w",
        );
        over.src = "overlay".into();
        let p = MountPlan::of(&fs(vec![content, skipped, nosuid, over]));
        assert_eq!(p.steps.len(), 3, "the skipped entry is not planned");
        assert_eq!(p.steps[0].action, Action::BindContent { len: 2 });
        assert!(!p.steps[0].dir);
        assert_eq!(p.steps[1].dst, "/tmp");
        assert_eq!(p.steps[1].entry, 2);
        match &p.steps[1].action {
            Action::Fresh { flags, source, .. } => {
                assert_eq!(*flags, libc::MS_NOSUID | libc::MS_NODEV);
                assert_eq!(source, "none");
            }
            a => panic!("{a:?}"),
        }
        match &p.steps[2].action {
            Action::Fresh { data, .. } => assert_eq!(
                data,
                "lowerdir=/oldroot/a:/oldroot/b,upperdir=/oldroot/u,workdir=/oldroot/w"
            ),
            a => panic!("{a:?}"),
        }
        let mut chroot = fs(vec![]);
        chroot.no_pivotroot = true;
        assert_eq!(MountPlan::of(&chroot).switch, RootSwitch::MoveAndChroot);
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize("/a/./b//../c/"), "/a/c");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(normalize(""), "/");
        assert!(is_within("/a/b", "/a") && !is_within("/ab", "/a") && is_within("/x", "/"));
    }
}
