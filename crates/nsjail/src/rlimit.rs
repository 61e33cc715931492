//! Resource limits in the child: soft = hard = the value of the jail spec
//! (nsjail's units applied and `SOFT`/`HARD` resolved while lowering).

use crate::sys;

pub use nsjail_config::spec::RlimitSpec as Limit;

/// Apply the limits (child). A failure is fatal for the jail; raising a limit
/// above the inherited hard limit (EPERM without host root) says so.
pub fn apply(limits: &[Limit]) -> Result<(), String> {
    for l in limits {
        if let Err(e) = sys::set_rlimit(l.resource, l.name, l.value, l.value) {
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
