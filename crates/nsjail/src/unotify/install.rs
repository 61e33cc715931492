//! Child side of `seccomp_unotify`: install the tracing filter and get its
//! listener, right before the main policy. The listener is then handed to
//! the supervisor by [`crate::protocol::ChildEnd::send_listener`].

use std::os::fd::OwnedFd;

use crate::seccomp::Filter;

/// Install the tracing filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`
/// (no_new_privs first) and return the listener. The error text says what
/// to change.
pub fn install_listener(f: &Filter) -> Result<OwnedFd, String> {
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}"))?;
    super::raw::install_listener(f.insns()).map_err(|e| {
        format!("{e} (seccomp_unotify needs a kernel with SECCOMP_FILTER_FLAG_NEW_LISTENER, 5.0+; drop --seccomp_unotify)")
    })
}
