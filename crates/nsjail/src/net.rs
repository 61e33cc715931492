//! Networking inside a new network namespace (this issue: loopback only).

use crate::sys::{self, SysError};

/// Bring `lo` up unless `iface_no_lo` (child, in its new net namespace).
pub fn setup(cfg: &config::NsJailConfig) -> Result<(), SysError> {
    if !cfg.clone_newnet() || cfg.iface_no_lo() {
        return Ok(());
    }
    sys::interface_up("lo")
}
