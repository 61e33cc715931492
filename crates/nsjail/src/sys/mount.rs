//! Mounts and the root: mount(2), the new mount API's `mount_setattr`,
//! pivot_root, chroot, chdir, statvfs/statfs.

use super::{check, cstring, err_from, flag_names, SysResult};

/// mount(2) with raw flags.
pub fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> SysResult<()> {
    let what = || {
        format!(
            "'{}' -> '{}', type:'{}', flags:{}, options:'{}'",
            src.unwrap_or("none"),
            target,
            fstype.unwrap_or(""),
            mount_flags_str(flags),
            data.unwrap_or("")
        )
    };
    let c_src = cstring("mount", src.unwrap_or("none"))?;
    let c_tgt = cstring("mount", target)?;
    let c_fs = fstype.map(|f| cstring("mount", f)).transpose()?;
    let c_data = data.map(|d| cstring("mount", d)).transpose()?;
    // SAFETY: all pointers are NUL-terminated C strings that outlive the
    // call, or NULL where mount(2) accepts NULL.
    let rc = unsafe {
        libc::mount(
            c_src.as_ptr(),
            c_tgt.as_ptr(),
            c_fs.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            c_data
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
        )
    };
    check(rc as libc::c_long, "mount", what).map(|_| ())
}

/// Render mount flags as `MS_RDONLY|MS_BIND|...`.
pub fn mount_flags_str(flags: libc::c_ulong) -> String {
    let names: [(libc::c_ulong, &str); 14] = [
        (libc::MS_RDONLY, "MS_RDONLY"),
        (libc::MS_NOSUID, "MS_NOSUID"),
        (libc::MS_NODEV, "MS_NODEV"),
        (libc::MS_NOEXEC, "MS_NOEXEC"),
        (libc::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
        (libc::MS_REMOUNT, "MS_REMOUNT"),
        (libc::MS_MANDLOCK, "MS_MANDLOCK"),
        (libc::MS_NOATIME, "MS_NOATIME"),
        (libc::MS_NODIRATIME, "MS_NODIRATIME"),
        (libc::MS_BIND, "MS_BIND"),
        (libc::MS_MOVE, "MS_MOVE"),
        (libc::MS_REC, "MS_REC"),
        (libc::MS_PRIVATE, "MS_PRIVATE"),
        (libc::MS_RELATIME, "MS_RELATIME"),
    ];
    flag_names(flags, &names)
}

/// umount2(2).
pub fn umount2(target: &str, flags: libc::c_int) -> SysResult<()> {
    let c = cstring("umount2", target)?;
    // SAFETY: `c` is a valid C string for the duration of the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), flags) };
    check(rc as libc::c_long, "umount2", || target.to_string()).map(|_| ())
}

/// pivot_root(2).
pub fn pivot_root(new_root: &str, put_old: &str) -> SysResult<()> {
    let n = cstring("pivot_root", new_root)?;
    let o = cstring("pivot_root", put_old)?;
    // SAFETY: both are valid C strings for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) };
    check(rc, "pivot_root", || format!("'{new_root}', '{put_old}'")).map(|_| ())
}

/// statvfs(3) mount flags (`f_flag`) of the filesystem holding `path`,
/// translated to `MS_*` values.
pub fn statvfs_flags(path: &str) -> SysResult<libc::c_ulong> {
    let c = cstring("statvfs", path)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` is a writable statvfs buffer, `c` a valid C string.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    check(rc as libc::c_long, "statvfs", || path.to_string())?;
    // SAFETY: statvfs succeeded and filled the structure.
    let st = unsafe { st.assume_init() };
    let f = st.f_flag;
    let map: [(libc::c_ulong, libc::c_ulong); 9] = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_SYNCHRONOUS, libc::MS_SYNCHRONOUS),
        (libc::ST_MANDLOCK, libc::MS_MANDLOCK),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // musl's libc lacks ST_RELATIME; the kernel value is 0x1000.
        (0x1000, libc::MS_RELATIME),
    ];
    Ok(map
        .iter()
        .filter(|(st, _)| f & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms))
}

/// `MOUNT_ATTR_RDONLY` for [`mount_setattr`].
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `MOUNT_ATTR_NOSUID` for [`mount_setattr`].
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;

/// `MOUNT_ATTR_NODEV` for [`mount_setattr`].
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `MOUNT_ATTR_NOEXEC` for [`mount_setattr`].
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount at `path` (with `AT_RECURSIVE`: on every
/// mount below it too): set the `MOUNT_ATTR_*` bits in `set`, clear those
/// in `clr`. Linux >= 5.12; ENOSYS before.
pub fn mount_setattr(path: &str, recursive: bool, set: u64, clr: u64) -> SysResult<()> {
    let c = cstring("mount_setattr", path)?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a valid C string and `attr` a readable mount_attr whose
    // size is passed along; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc, "mount_setattr", || {
        format!(
            "'{path}', set:{set:#x}, clr:{clr:#x}{}",
            if recursive { ", AT_RECURSIVE" } else { "" }
        )
    })
    .map(|_| ())
}

/// chroot(2).
pub fn chroot(path: &str) -> SysResult<()> {
    rustix::process::chroot(path).map_err(|e| err_from("chroot", path, e.into()))
}

/// chdir(2).
pub fn chdir(path: &str) -> SysResult<()> {
    rustix::process::chdir(path).map_err(|e| err_from("chdir", path, e.into()))
}
