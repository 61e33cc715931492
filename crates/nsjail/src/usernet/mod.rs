//! User-mode networking of a jail (`user_net`, §3.6/§12): the runtime side
//! of [`nsjail_config::spec::usernet::UserNetSpec`].

use nsjail_config::spec::usernet::{UserNetBackend, UserNetSpec};

/// Supervisor side, after clone and before the child proceeds: start the
/// jail's user network.
///
/// # Errors
/// Why the network could not be started (the jail is then not run).
pub fn start_parent(spec: &UserNetSpec, _pid: i32) -> Result<(), String> {
    Err(format!(
        "user_net (backend {}) is not implemented by this runtime yet; remove user_net",
        match spec.backend {
            UserNetBackend::Nstun(_) => "NSTUN",
            UserNetBackend::Pasta(_) => "PASTA",
        }
    ))
}
