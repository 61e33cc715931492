//! Every raw system call the runtime needs that no safe crate wraps, each
//! wrapped once, split by concern: `process`, `creds`, `mount`, `fd`,
//! `signal`, `net`, `pidfd`, `tun`. Errors carry the call and what it was applied
//! to. Everything is re-exported here (`sys::mount`, `sys::reap`, ...).

mod creds;
mod fd;
mod mount;
mod net;
mod pidfd;
mod process;
mod signal;
mod tun;

pub use creds::*;
pub use fd::*;
pub use mount::*;
pub use net::*;
pub use pidfd::*;
pub use process::*;
pub use signal::*;
pub use tun::*;

use std::ffi::CString;
use std::io;

/// A failed system call: which call, on what, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call}({what}) failed: {}", errno_text(source))]
pub struct SysError {
    /// The call that failed, e.g. `mount`.
    pub call: &'static str,
    /// What it was applied to (a path, a pid, a flag set...).
    pub what: String,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// An OS error as `strerror` words, without Rust's " (os error N)" suffix.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// Result of the wrappers in this module.
pub type SysResult<T> = Result<T, SysError>;

pub(crate) fn err(call: &'static str, what: impl Into<String>) -> SysError {
    SysError {
        call,
        what: what.into(),
        source: io::Error::last_os_error(),
    }
}

/// Build the error from an explicit errno value.
pub fn err_from(call: &'static str, what: impl Into<String>, e: io::Error) -> SysError {
    SysError {
        call,
        what: what.into(),
        source: e,
    }
}

pub(crate) fn check(
    rc: libc::c_long,
    call: &'static str,
    what: impl FnOnce() -> String,
) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(err(call, what()))
    } else {
        Ok(rc)
    }
}

/// Turn a string into a C string; interior NULs become an `InvalidInput` error.
pub fn cstring(call: &'static str, s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| {
        err_from(
            call,
            s.replace('\0', "\\0"),
            io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"),
        )
    })
}

/// The names of the bits of `flags` set in `names` (in the table's order)
/// joined with `|`, or `0` when none is: how nsjail prints flag words.
pub(crate) fn flag_names<T>(flags: T, names: &[(T, &str)]) -> String
where
    T: Copy + std::ops::BitAnd<Output = T> + PartialEq + Default,
{
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| flags & *b != T::default())
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

/// Local time broken down for log lines: (tm, gmtoff seconds).
pub fn localtime_now() -> (libc::tm, i64) {
    // SAFETY: time(NULL) is always safe.
    let t = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: tm is plain data; localtime_r fills it from `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    unsafe { libc::localtime_r(&t, &mut tm) };
    let off = tm.tm_gmtoff;
    (tm, off)
}
