//! Capabilities after the uid switch (nsjail §7): inheritable and ambient
//! sets rebuilt from `keep_caps` / `cap`, every other capability dropped
//! from the bounding set.

use rustix::thread::{self as rt, CapabilitySet};

use crate::sys::{self, SysError};

/// Errors from the capability setup.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A requested capability is not in the permitted set.
    #[error("capability {name} was requested (--cap) but is not in the permitted set: run as root or with a user namespace")]
    NotPermitted {
        /// Its name.
        name: String,
    },
    /// A raw call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

/// CAP_SETPCAP (linux/capability.h).
const CAP_SETPCAP: u32 = 8;

/// Highest capability number we try to drop from the bounding set.
const CAP_LAST: u32 = 63;

fn bit(nr: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1u64 << nr)
}

fn capget() -> Result<rt::CapabilitySets, CapsError> {
    rt::capabilities(None).map_err(|e| sys::err_from("capget", "self", e.into()).into())
}

fn capset(s: rt::CapabilitySets) -> Result<(), CapsError> {
    rt::set_capabilities(None, s).map_err(|e| sys::err_from("capset", "self", e.into()).into())
}

/// Apply the capability policy. `requested` are capability numbers from
/// `cap` entries (unknown names were already warned about and skipped).
pub fn apply(keep_caps: bool, requested: &[(u32, String)]) -> Result<(), CapsError> {
    let mut sets = capget()?;
    sets.inheritable = CapabilitySet::empty();
    if let Err(e) = sys::prctl_ambient(libc::PR_CAP_AMBIENT_CLEAR_ALL, 0) {
        log::warn!("Couldn't clear the ambient capability set: {e}");
    }
    if keep_caps {
        sets.inheritable = sets.permitted;
        capset(sets)?;
        for nr in 0..=CAP_LAST {
            if sets.permitted.contains(bit(nr)) {
                sys::prctl_ambient(libc::PR_CAP_AMBIENT_RAISE, nr)?;
            }
        }
        return Ok(());
    }
    let mut wanted = CapabilitySet::empty();
    for (nr, name) in requested {
        if !sets.permitted.contains(bit(*nr)) {
            return Err(CapsError::NotPermitted { name: name.clone() });
        }
        wanted |= bit(*nr);
    }
    sets.inheritable = wanted;
    capset(sets)?;
    if sets.effective.contains(bit(CAP_SETPCAP)) {
        for nr in 0..=CAP_LAST {
            if wanted.contains(bit(nr)) {
                continue;
            }
            // EINVAL: the kernel does not know this capability.
            if let Err(e) = sys::prctl(
                libc::PR_CAPBSET_DROP,
                nr as libc::c_ulong,
                "PR_CAPBSET_DROP",
            ) {
                if e.source.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e.into());
                }
            }
        }
    }
    for (nr, _) in requested {
        sys::prctl_ambient(libc::PR_CAP_AMBIENT_RAISE, *nr)?;
    }
    Ok(())
}
