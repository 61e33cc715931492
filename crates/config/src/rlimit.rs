//! The rlimits the child sets (soft = hard = the value), computed from the
//! effective config with nsjail's units: as/core/fsize/stack in MiB,
//! memlock in KiB, msgqueue in bytes, cpu in seconds, counts as is.

use crate::proto::config::{NsJailConfig, RLimit};
use crate::Jail;

/// The resource number type `setrlimit` takes on this target.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub type RlimitResource = libc::__rlimit_resource_t;
/// The resource number type `setrlimit` takes on this target.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub type RlimitResource = libc::c_int;

/// What to hand to setrlimit for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitValue {
    /// This many units of the resource (already multiplied: bytes for
    /// as/core/fsize/stack/memlock/msgqueue, seconds for cpu), soft = hard.
    Value(u64),
    /// nsjail's current soft limit, for both soft and hard.
    Soft,
    /// nsjail's current hard limit, for both soft and hard.
    Hard,
    /// RLIM64_INFINITY.
    Inf,
}

/// One rlimit of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlimitSetting {
    /// `RLIMIT_AS` etc. as a number for setrlimit.
    pub resource: RlimitResource,
    /// "RLIMIT_AS".
    pub name: &'static str,
    /// What to set.
    pub value: RlimitValue,
    /// Why: e.g. "rlimit_as: 536870912 (MiB) from config" or "default".
    pub source: String,
}

/// Static description of one rlimit field pair.
#[derive(Debug, Clone, Copy)]
pub struct RlimitField {
    /// Resource number.
    pub resource: RlimitResource,
    /// "RLIMIT_AS".
    pub name: &'static str,
    /// Proto value field, e.g. "rlimit_as".
    pub field: &'static str,
    /// Multiplier from the field's unit to the kernel's.
    pub mul: u64,
    /// The field's unit, for messages ("MiB", "KiB", "bytes", "s", "").
    pub unit: &'static str,
    /// The kernel's unit ("bytes", "s", "").
    pub kernel_unit: &'static str,
}

/// The ten rlimits nsjail sets, in its order.
pub const RLIMIT_FIELDS: [RlimitField; 10] = [
    RlimitField {
        resource: libc::RLIMIT_AS,
        name: "RLIMIT_AS",
        field: "rlimit_as",
        mul: 1 << 20,
        unit: "MiB",
        kernel_unit: "bytes",
    },
    RlimitField {
        resource: libc::RLIMIT_CORE,
        name: "RLIMIT_CORE",
        field: "rlimit_core",
        mul: 1 << 20,
        unit: "MiB",
        kernel_unit: "bytes",
    },
    RlimitField {
        resource: libc::RLIMIT_CPU,
        name: "RLIMIT_CPU",
        field: "rlimit_cpu",
        mul: 1,
        unit: "s",
        kernel_unit: "s",
    },
    RlimitField {
        resource: libc::RLIMIT_FSIZE,
        name: "RLIMIT_FSIZE",
        field: "rlimit_fsize",
        mul: 1 << 20,
        unit: "MiB",
        kernel_unit: "bytes",
    },
    RlimitField {
        resource: libc::RLIMIT_NOFILE,
        name: "RLIMIT_NOFILE",
        field: "rlimit_nofile",
        mul: 1,
        unit: "",
        kernel_unit: "",
    },
    RlimitField {
        resource: libc::RLIMIT_NPROC,
        name: "RLIMIT_NPROC",
        field: "rlimit_nproc",
        mul: 1,
        unit: "",
        kernel_unit: "",
    },
    RlimitField {
        resource: libc::RLIMIT_STACK,
        name: "RLIMIT_STACK",
        field: "rlimit_stack",
        mul: 1 << 20,
        unit: "MiB",
        kernel_unit: "bytes",
    },
    RlimitField {
        resource: libc::RLIMIT_MEMLOCK,
        name: "RLIMIT_MEMLOCK",
        field: "rlimit_memlock",
        mul: 1 << 10,
        unit: "KiB",
        kernel_unit: "bytes",
    },
    RlimitField {
        resource: libc::RLIMIT_RTPRIO,
        name: "RLIMIT_RTPRIO",
        field: "rlimit_rtprio",
        mul: 1,
        unit: "",
        kernel_unit: "",
    },
    RlimitField {
        resource: libc::RLIMIT_MSGQUEUE,
        name: "RLIMIT_MSGQUEUE",
        field: "rlimit_msgqueue",
        mul: 1,
        unit: "bytes",
        kernel_unit: "bytes",
    },
];

/// The (value, has value, type, has type) of one rlimit field pair.
pub fn rlimit_field_values(cfg: &NsJailConfig, field: &str) -> (u64, bool, RLimit, bool) {
    macro_rules! pick {
        ($v:ident, $hv:ident, $t:ident, $ht:ident) => {
            (cfg.$v(), cfg.$hv(), cfg.$t(), cfg.$ht())
        };
    }
    match field {
        "rlimit_as" => pick!(rlimit_as, has_rlimit_as, rlimit_as_type, has_rlimit_as_type),
        "rlimit_core" => pick!(
            rlimit_core,
            has_rlimit_core,
            rlimit_core_type,
            has_rlimit_core_type
        ),
        "rlimit_cpu" => pick!(
            rlimit_cpu,
            has_rlimit_cpu,
            rlimit_cpu_type,
            has_rlimit_cpu_type
        ),
        "rlimit_fsize" => pick!(
            rlimit_fsize,
            has_rlimit_fsize,
            rlimit_fsize_type,
            has_rlimit_fsize_type
        ),
        "rlimit_nofile" => pick!(
            rlimit_nofile,
            has_rlimit_nofile,
            rlimit_nofile_type,
            has_rlimit_nofile_type
        ),
        "rlimit_nproc" => pick!(
            rlimit_nproc,
            has_rlimit_nproc,
            rlimit_nproc_type,
            has_rlimit_nproc_type
        ),
        "rlimit_stack" => pick!(
            rlimit_stack,
            has_rlimit_stack,
            rlimit_stack_type,
            has_rlimit_stack_type
        ),
        "rlimit_memlock" => pick!(
            rlimit_memlock,
            has_rlimit_memlock,
            rlimit_memlock_type,
            has_rlimit_memlock_type
        ),
        "rlimit_rtprio" => pick!(
            rlimit_rtprio,
            has_rlimit_rtprio,
            rlimit_rtprio_type,
            has_rlimit_rtprio_type
        ),
        "rlimit_msgqueue" => pick!(
            rlimit_msgqueue,
            has_rlimit_msgqueue,
            rlimit_msgqueue_type,
            has_rlimit_msgqueue_type
        ),
        _ => (0, false, RLimit::VALUE, false),
    }
}

/// The largest rlimit the kernel reads as a limit: it compares some (as
/// RLIMIT_FSIZE against a signed file offset) as signed 64-bit values, so
/// anything from 2^63 up acts as a negative limit (every write fails).
pub const RLIMIT_MAX_MEANINGFUL: u64 = i64::MAX as u64;

/// How the source of a saturated value says so.
pub const SATURATED: &str =
    "above 2^63-1 (which the kernel would read as negative): saturated to RLIM_INFINITY (ours)";

/// A value in the kernel's unit; above [`RLIMIT_MAX_MEANINGFUL`] it becomes
/// [`RlimitValue::Inf`] (ours: nsjail passes it on, and the jail cannot
/// write a byte).
pub fn saturate(v: u64) -> RlimitValue {
    if v > RLIMIT_MAX_MEANINGFUL {
        RlimitValue::Inf
    } else {
        RlimitValue::Value(v)
    }
}

fn plan(cfg: &NsJailConfig, origin: &dyn Fn(&str) -> Option<String>) -> Vec<RlimitSetting> {
    if cfg.disable_rl() {
        return Vec::new();
    }
    RLIMIT_FIELDS
        .iter()
        .map(|f| {
            let (v, has_v, t, has_t) = rlimit_field_values(cfg, f.field);
            let value = match t {
                RLimit::VALUE => saturate(v.saturating_mul(f.mul)),
                RLimit::SOFT => RlimitValue::Soft,
                RLimit::HARD => RlimitValue::Hard,
                RLimit::INF => RlimitValue::Inf,
            };
            let unit = if f.unit.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.unit)
            };
            let tname = format!("{}_type", f.field);
            let from = |name: &str| origin(name).unwrap_or_else(|| "config".to_string());
            let source = match (t, has_v, has_t) {
                (RLimit::VALUE, true, _) if value == RlimitValue::Inf => {
                    format!("{}: {v}{unit} from {}, {SATURATED}", f.field, from(f.field))
                }
                (RLimit::VALUE, true, _) => {
                    format!("{}: {v}{unit} from {}", f.field, from(f.field))
                }
                (RLimit::VALUE, false, true) => format!(
                    "{}: VALUE from {}, default value {v}{unit}",
                    tname,
                    from(&tname)
                ),
                (RLimit::VALUE, false, false) => format!("default ({v}{unit})"),
                (_, _, true) => format!("{tname}: {:?} from {}", t, from(&tname)),
                (_, _, false) => format!("default ({tname} {:?})", t),
            };
            RlimitSetting {
                resource: f.resource,
                name: f.name,
                value,
                source,
            }
        })
        .collect()
}

/// The rlimits to set, from the config alone ("from config" / "default").
/// Empty when `disable_rl`. Multiplication saturates instead of wrapping,
/// and any value above 2^63-1 becomes RLIM_INFINITY (`saturate`).
pub fn rlimit_plan(cfg: &NsJailConfig) -> Vec<RlimitSetting> {
    plan(cfg, &|_| None)
}

/// Like [`rlimit_plan`] but naming where each set value came from
/// (`--rlimit_as`, `config 'x.cfg':62`).
pub fn jail_rlimit_plan(jail: &Jail) -> Vec<RlimitSetting> {
    plan(&jail.cfg, &|name| jail.origins.get(name).cloned())
}

/// A byte count in the largest binary unit that keeps it readable.
pub fn human_bytes(v: u64) -> String {
    const UNITS: [(&str, u64); 6] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    if v == u64::MAX {
        return "unlimited (saturated)".to_string();
    }
    for (name, size) in UNITS {
        if v >= size {
            if v.is_multiple_of(size) {
                return format!("{} {name}", v / size);
            }
            return format!("{:.1} {name}", v as f64 / size as f64);
        }
    }
    format!("{v} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let cfg = NsJailConfig::new();
        let p = rlimit_plan(&cfg);
        assert_eq!(p.len(), 10);
        assert_eq!(p[0].name, "RLIMIT_AS");
        assert_eq!(p[0].value, RlimitValue::Value(4096 << 20));
        assert_eq!(p[0].source, "default (4096 (MiB))");
        assert_eq!(p[2].value, RlimitValue::Value(600));
        assert_eq!(p[3].value, RlimitValue::Value(1 << 20));
        assert_eq!(p[4].value, RlimitValue::Value(32));
        for s in &p[5..10] {
            assert_eq!(s.value, RlimitValue::Soft, "{}", s.name);
        }
    }

    #[test]
    fn units_types_and_saturation() {
        let mut cfg = NsJailConfig::new();
        cfg.set_rlimit_as(536870912);
        cfg.set_rlimit_memlock(64);
        cfg.set_rlimit_memlock_type(RLimit::VALUE);
        cfg.set_rlimit_nproc(1);
        cfg.set_rlimit_cpu_type(RLimit::INF);
        cfg.set_rlimit_nofile_type(RLimit::HARD);
        cfg.set_rlimit_fsize(u64::MAX);
        let p = rlimit_plan(&cfg);
        assert_eq!(p[0].value, RlimitValue::Value(562949953421312));
        assert_eq!(p[0].source, "rlimit_as: 536870912 (MiB) from config");
        assert_eq!(p[7].value, RlimitValue::Value(65536));
        assert_eq!(p[5].value, RlimitValue::Soft);
        assert_eq!(p[2].value, RlimitValue::Inf);
        assert_eq!(p[4].value, RlimitValue::Hard);
        assert_eq!(p[3].value, RlimitValue::Inf);
        cfg.set_disable_rl(true);
        assert!(rlimit_plan(&cfg).is_empty());
    }

    #[test]
    fn near_infinite_values_saturate_to_infinity() {
        let mut cfg = NsJailConfig::new();
        // 2^43 MiB = 2^63 bytes: negative for the kernel.
        cfg.set_rlimit_fsize(8796093022208);
        // 2^44 - 1 MiB: just under 2^64 bytes.
        cfg.set_rlimit_stack(17592186044415);
        cfg.set_rlimit_stack_type(RLimit::VALUE);
        // 2^43 - 1 MiB: still positive, kept.
        cfg.set_rlimit_core(8796093022207);
        // a count above 2^63 - 1
        cfg.set_rlimit_msgqueue(1 << 63);
        cfg.set_rlimit_msgqueue_type(RLimit::VALUE);
        let p = rlimit_plan(&cfg);
        assert_eq!(p[3].value, RlimitValue::Inf, "{:?}", p[3]);
        assert!(
            p[3].source.contains("saturated to RLIM_INFINITY"),
            "{}",
            p[3].source
        );
        assert_eq!(p[6].value, RlimitValue::Inf);
        assert_eq!(p[1].value, RlimitValue::Value(8796093022207 << 20));
        assert_eq!(p[9].value, RlimitValue::Inf);
        assert_eq!(
            saturate(i64::MAX as u64),
            RlimitValue::Value(i64::MAX as u64)
        );
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(562949953421312), "512 TiB");
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10), "10 bytes");
    }
}
