//! Destination paths inside the jail being built: resolved as the jail
//! will see them (symlinks followed relative to the new root, `..` never
//! climbing above it), split into the part that exists and the part that
//! has to be created.

use std::io;
use std::path::Path;

/// A destination resolved inside the new root.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The deepest existing path (absolute, in the build namespace, inside
    /// the root, with no symlinks left).
    pub existing: String,
    /// Components still missing below `existing`, in order.
    pub missing: Vec<String>,
}

/// Symlinks followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

fn components(p: &str) -> impl DoubleEndedIterator<Item = &str> {
    p.split('/').filter(|c| !c.is_empty() && *c != ".")
}

fn parent_of(root: &str, cur: &str) -> String {
    if cur.len() <= root.len() {
        return root.to_string();
    }
    match cur.rfind('/') {
        Some(i) if i >= root.len() => cur[..i].to_string(),
        _ => root.to_string(),
    }
}

/// Resolve `dst` (a jail path) under `root`. With `follow_last` false a
/// symlink as the last component is returned as existing, unfollowed.
pub(super) fn resolve(root: &str, dst: &str, follow_last: bool) -> io::Result<Resolved> {
    let mut pending: Vec<String> = components(dst).rev().map(str::to_string).collect();
    let mut cur = root.to_string();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            cur = parent_of(root, &cur);
            continue;
        }
        let next = format!("{cur}/{c}");
        match std::fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() && (follow_last || !pending.is_empty()) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&next)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    cur = root.to_string();
                }
                pending.extend(components(&target).rev().map(str::to_string));
            }
            Ok(_) => cur = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut missing = vec![c];
                missing.extend(pending.into_iter().rev());
                return Ok(Resolved {
                    existing: cur,
                    missing,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Resolved {
        existing: cur,
        missing: Vec::new(),
    })
}

/// `path` as the jail will see it (`root` stripped).
pub(super) fn jail_view(root: &str, path: &str) -> String {
    match path.strip_prefix(root) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => path.to_string(),
    }
}

/// `root` joined with a path (leading slashes of `p` ignored).
pub(super) fn join(root: &str, p: &str) -> String {
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{p}")
    }
}

/// st_dev of a path (symlinks followed).
pub(super) fn dev_of(path: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(Path::new(path)).map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(tag: &str) -> String {
        let d = std::env::temp_dir().join(format!(
            "nsjail-unit-path-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.to_string_lossy().into_owned()
    }

    #[test]
    fn joins_and_views() {
        assert_eq!(join("/newroot", "/"), "/newroot");
        assert_eq!(join("/newroot", "/proc"), "/newroot/proc");
        assert_eq!(join("/oldroot", "etc/x"), "/oldroot/etc/x");
        assert_eq!(jail_view("/newroot", "/newroot"), "/");
        assert_eq!(jail_view("/newroot", "/newroot/a/b"), "/a/b");
        assert_eq!(jail_view("/newroot", "/newrootx"), "/newrootx");
    }

    #[test]
    fn resolves_inside_the_root() {
        let r = tmp("resolve");
        std::fs::create_dir_all(format!("{r}/usr/lib")).unwrap();
        symlink("usr/lib", format!("{r}/lib")).unwrap();
        symlink("/usr", format!("{r}/abs")).unwrap();
        symlink("../../../../..", format!("{r}/usr/up")).unwrap();
        symlink("loop", format!("{r}/loop")).unwrap();

        let x = resolve(&r, "/lib/x/y", true).unwrap();
        assert_eq!(x.existing, format!("{r}/usr/lib"));
        assert_eq!(x.missing, ["x", "y"]);
        // absolute links restart at the root, not at the host's /
        let x = resolve(&r, "/abs/lib", true).unwrap();
        assert_eq!(x.existing, format!("{r}/usr/lib"));
        assert!(x.missing.is_empty());
        // `..` never climbs above the root
        let x = resolve(&r, "/usr/up/usr", true).unwrap();
        assert_eq!(x.existing, format!("{r}/usr"));
        let x = resolve(&r, "/../../usr/./lib", true).unwrap();
        assert_eq!(x.existing, format!("{r}/usr/lib"));
        // the last component unfollowed
        let x = resolve(&r, "/lib", false).unwrap();
        assert_eq!(x.existing, format!("{r}/lib"));
        assert_eq!(resolve(&r, "/", true).unwrap().existing, r);
        let e = resolve(&r, "/loop/x", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        std::fs::remove_dir_all(&r).unwrap();
    }
}
