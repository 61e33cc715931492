//! Resource limits in the child: soft = hard = the value computed by
//! `nsjail_config::rlimit_plan` (nsjail's units already applied), `SOFT`/`HARD`
//! meaning nsjail's own current soft/hard limit.

use crate::sys::{self, SysError};

/// One limit to apply, in setrlimit units.
#[derive(Debug, Clone)]
pub struct Limit {
    /// RLIMIT_* number.
    pub resource: u32,
    /// Its name for messages (`RLIMIT_AS`).
    pub name: String,
    /// Value for both soft and hard.
    pub value: u64,
}

/// Resolve the plan against the supervisor's own limits (done before clone,
/// so the child only issues setrlimit calls).
pub fn resolve(cfg: &nsjail_config::NsJailConfig) -> Result<Vec<Limit>, SysError> {
    if cfg.disable_rl() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for s in nsjail_config::rlimit_plan(cfg) {
        // u32 on glibc, c_int on musl.
        #[allow(clippy::unnecessary_cast)]
        let resource = s.resource as u32;
        let value = match s.value {
            nsjail_config::RlimitValue::Value(v) => v,
            nsjail_config::RlimitValue::Inf => libc::RLIM64_INFINITY,
            nsjail_config::RlimitValue::Soft => sys::get_rlimit(resource)?.0,
            nsjail_config::RlimitValue::Hard => sys::get_rlimit(resource)?.1,
        };
        out.push(Limit {
            resource,
            name: s.name.to_string(),
            value,
        });
    }
    Ok(out)
}

/// Apply the limits (child). A failure is fatal for the jail; raising a limit
/// above the inherited hard limit (EPERM without host root) says so.
pub fn apply(limits: &[Limit]) -> Result<(), String> {
    for l in limits {
        if let Err(e) = sys::set_rlimit(l.resource, &l.name, l.value, l.value) {
            return Err(match sys::get_rlimit(l.resource) {
                Ok((_, hard)) if e.source.raw_os_error() == Some(libc::EPERM) && l.value > hard => {
                    let v = |x: u64| {
                        if x == libc::RLIM64_INFINITY {
                            "unlimited".to_string()
                        } else {
                            x.to_string()
                        }
                    };
                    format!(
                        "{e}: {} is above the hard limit nsjail inherited ({}), and raising a hard \
                         limit needs CAP_SYS_RESOURCE in the host (root); ask for at most {} \
                         ('max' = the hard limit), or raise the hard limit before starting nsjail",
                        v(l.value),
                        v(hard),
                        v(hard)
                    )
                }
                _ => e.to_string(),
            });
        }
    }
    Ok(())
}
