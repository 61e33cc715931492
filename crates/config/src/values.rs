//! Value parsing shared by the command line and the config loader: numbers
//! (C `strtoul(…, 0)` syntax, but junk is an error instead of 0), rlimit
//! keywords, user/group ids, capability names, MACVLAN modes.

use crate::error::ConfigError;
use crate::proto::config::RLimit;

/// Parses an unsigned integer the way `strtoull(s, NULL, 0)` reads it:
/// decimal, `0x`/`0X` hex or leading-`0` octal, an optional leading `+`.
/// Unlike C, junk, an empty string, a sign `-` or overflow is an error
/// (returned as the reason text).
pub fn parse_c_u64(s: &str) -> Result<u64, String> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() {
        return Err("is not a number; give a decimal, 0x-hex or 0-octal integer".into());
    }
    if t.starts_with('-') {
        return Err("is negative; give a number >= 0".into());
    }
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err("is not a number; give a decimal, 0x-hex or 0-octal integer".into());
    }
    u64::from_str_radix(digits, radix)
        .map_err(|_| format!("is too large; the maximum is {}", u64::MAX))
}

/// Like [`parse_c_u64`] but for signed values (`strtoll`), with a leading `-`.
pub fn parse_c_i64(s: &str) -> Result<i64, String> {
    if let Some(rest) = s.strip_prefix('-') {
        if rest.starts_with(['-', '+']) {
            return Err("is not a number; give a decimal, 0x-hex or 0-octal integer".into());
        }
        let v = parse_c_u64(rest)?;
        if v > i64::MAX as u64 + 1 {
            return Err(format!("is too small; the minimum is {}", i64::MIN));
        }
        Ok((v as i128).wrapping_neg() as i64)
    } else {
        let v = parse_c_u64(s)?;
        i64::try_from(v).map_err(|_| format!("is too large; the maximum is {}", i64::MAX))
    }
}

/// Parses a number that must fit `T` (u32, u64, i32, i64), with an error
/// naming `flag`.
pub fn parse_num<T>(flag: &str, s: &str) -> Result<T, ConfigError>
where
    T: TryFrom<i64> + TryFrom<u64> + NumBounds,
{
    let bad = |reason: String| ConfigError::BadNumber {
        flag: flag.to_string(),
        value: s.to_string(),
        reason,
    };
    if T::SIGNED {
        let v = parse_c_i64(s).map_err(bad)?;
        T::try_from(v).map_err(|_| bad(format!("is out of range; use {}..{}", T::MIN, T::MAX)))
    } else {
        let v = parse_c_u64(s).map_err(bad)?;
        T::try_from(v).map_err(|_| bad(format!("is out of range; use {}..{}", T::MIN, T::MAX)))
    }
}

/// The bounds of the integer types [`parse_num`] handles (for messages).
pub trait NumBounds {
    /// Whether negative values are allowed.
    const SIGNED: bool;
    /// Minimum as text.
    const MIN: &'static str;
    /// Maximum as text.
    const MAX: &'static str;
}
impl NumBounds for u32 {
    const SIGNED: bool = false;
    const MIN: &'static str = "0";
    const MAX: &'static str = "4294967295";
}
impl NumBounds for u64 {
    const SIGNED: bool = false;
    const MIN: &'static str = "0";
    const MAX: &'static str = "18446744073709551615";
}
impl NumBounds for i32 {
    const SIGNED: bool = true;
    const MIN: &'static str = "-2147483648";
    const MAX: &'static str = "2147483647";
}
impl NumBounds for i64 {
    const SIGNED: bool = true;
    const MIN: &'static str = "-9223372036854775808";
    const MAX: &'static str = "9223372036854775807";
}

/// What an rlimit flag value means: a number (in the field's unit) or one
/// of the keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RlimitArg {
    /// A number: sets the value and switches the type to VALUE.
    Value(u64),
    /// `max`/`hard`, `def`/`soft`, `inf` (case-insensitive).
    Type(RLimit),
}

/// Parses an rlimit flag value: `max|hard`, `def|soft`, `inf`
/// (case-insensitive) or a number (validated, C base prefixes allowed).
pub fn parse_rlimit_arg(flag: &str, s: &str) -> Result<RlimitArg, ConfigError> {
    let k = s.to_ascii_lowercase();
    match k.as_str() {
        "max" | "hard" => return Ok(RlimitArg::Type(RLimit::HARD)),
        "def" | "soft" => return Ok(RlimitArg::Type(RLimit::SOFT)),
        "inf" => return Ok(RlimitArg::Type(RLimit::INF)),
        _ => {}
    }
    match parse_c_u64(s) {
        Ok(v) => Ok(RlimitArg::Value(v)),
        Err(_) => Err(ConfigError::BadRlimit {
            flag: flag.to_string(),
            value: s.to_string(),
        }),
    }
}

/// Capability names known to nsjail, indexed by their number (0..=40).
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability by its exact name (`CAP_SYS_ADMIN` → 21).
pub fn cap_from_name(name: &str) -> Option<u32> {
    CAP_NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// The name of a capability number (21 → `CAP_SYS_ADMIN`).
pub fn cap_name(cap: u32) -> Option<&'static str> {
    CAP_NAMES.get(cap as usize).copied()
}

/// MACVLAN modes accepted by `--macvlan_vs_mo` / `macvlan_vs_mo`.
pub const MACVLAN_MODES: [&str; 4] = ["private", "vepa", "bridge", "passthru"];

/// Validates a MACVLAN mode (case-insensitive) and returns it lowercased.
pub fn parse_macvlan_mode(source: &str, s: &str) -> Result<String, ConfigError> {
    let l = s.to_ascii_lowercase();
    if MACVLAN_MODES.contains(&l.as_str()) {
        Ok(l)
    } else {
        Err(ConfigError::BadMacvlanMode {
            source_: source.to_string(),
            value: s.to_string(),
        })
    }
}

/// Which id database an id is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// uid: passwd.
    User,
    /// gid: group.
    Group,
}

impl IdKind {
    fn noun(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Group => "group",
        }
    }
    fn db(self) -> &'static str {
        match self {
            IdKind::User => "/etc/passwd",
            IdKind::Group => "/etc/group",
        }
    }
    /// nsjail's current uid or gid (what an empty id means).
    pub fn current(self) -> u32 {
        match self {
            IdKind::User => rustix::process::getuid().as_raw(),
            IdKind::Group => rustix::process::getgid().as_raw(),
        }
    }
}

/// Resolves one id as nsjail does: empty = nsjail's current id, then a
/// user/group name (NSS lookup), then a decimal number.
pub fn resolve_id(source: &str, s: &str, kind: IdKind) -> Result<u32, ConfigError> {
    if s.is_empty() {
        return Ok(kind.current());
    }
    // Names can't contain NUL; the lookup would fail anyway.
    if !s.contains('\0') {
        let found = match kind {
            IdKind::User => uzers::get_user_by_name(s).map(|u| u.uid()),
            IdKind::Group => uzers::get_group_by_name(s).map(|g| g.gid()),
        };
        if let Some(id) = found {
            return Ok(id);
        }
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = s.parse::<u32>() {
            if v != u32::MAX {
                return Ok(v);
            }
        }
    }
    Err(ConfigError::BadId {
        source_: source.to_string(),
        id: s.to_string(),
        kind: kind.noun(),
        db: kind.db(),
    })
}

/// One resolved uid or gid map range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// Id inside the user namespace.
    pub inside: u32,
    /// Id in the parent namespace.
    pub outside: u32,
    /// Range length (>= 1).
    pub count: u32,
    /// Written with newuidmap/newgidmap.
    pub use_newidmap: bool,
}

/// Parses a `-u/-g/-U/-G` value `inside[:outside[:count]]`: names or
/// numbers, empty parts = nsjail's current id, count < 1 becomes 1.
pub fn parse_id_map(
    flag: &str,
    spec: &str,
    kind: IdKind,
    use_newidmap: bool,
) -> Result<IdRange, ConfigError> {
    let mut parts = spec.split(':');
    let inside = parts.next().unwrap_or("");
    let outside = parts.next().unwrap_or("");
    let count = parts.next().unwrap_or("");
    let inside = resolve_id(flag, inside, kind)?;
    let outside = resolve_id(flag, outside, kind)?;
    let count = if count.is_empty() {
        1
    } else {
        parse_num::<u32>(flag, count)?.max(1)
    };
    Ok(IdRange {
        inside,
        outside,
        count,
        use_newidmap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_numbers() {
        assert_eq!(parse_c_u64("10"), Ok(10));
        assert_eq!(parse_c_u64("0x10"), Ok(16));
        assert_eq!(parse_c_u64("010"), Ok(8));
        assert_eq!(parse_c_u64("0"), Ok(0));
        assert_eq!(parse_c_u64("+7"), Ok(7));
        assert!(parse_c_u64("").is_err());
        assert!(parse_c_u64("abc").is_err());
        assert!(parse_c_u64("10abc").is_err());
        assert!(parse_c_u64("-1").is_err());
        assert!(parse_c_u64("09").is_err());
        assert!(parse_c_u64("0x").is_err());
        assert!(parse_c_u64("99999999999999999999999").is_err());
        assert_eq!(parse_c_i64("-5"), Ok(-5));
        assert_eq!(parse_c_i64("-0x10"), Ok(-16));
        assert_eq!(parse_c_i64("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_c_i64("--5").is_err());
        assert!(parse_c_i64("9223372036854775808").is_err());
    }

    #[test]
    fn num_ranges() {
        assert_eq!(parse_num::<u32>("--x", "4294967295").unwrap(), u32::MAX);
        assert!(parse_num::<u32>("--x", "4294967296").is_err());
        assert_eq!(parse_num::<i32>("--x", "-20").unwrap(), -20);
        assert!(parse_num::<i32>("--x", "2147483648").is_err());
        let e = parse_num::<u32>("--time_limit", "ten")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--time_limit") && e.contains("'ten'"), "{e}");
    }

    #[test]
    fn rlimit_keywords() {
        assert_eq!(
            parse_rlimit_arg("--r", "MAX").unwrap(),
            RlimitArg::Type(RLimit::HARD)
        );
        assert_eq!(
            parse_rlimit_arg("--r", "hard").unwrap(),
            RlimitArg::Type(RLimit::HARD)
        );
        assert_eq!(
            parse_rlimit_arg("--r", "Def").unwrap(),
            RlimitArg::Type(RLimit::SOFT)
        );
        assert_eq!(
            parse_rlimit_arg("--r", "soft").unwrap(),
            RlimitArg::Type(RLimit::SOFT)
        );
        assert_eq!(
            parse_rlimit_arg("--r", "INF").unwrap(),
            RlimitArg::Type(RLimit::INF)
        );
        assert_eq!(
            parse_rlimit_arg("--r", "0x20").unwrap(),
            RlimitArg::Value(32)
        );
        assert!(parse_rlimit_arg("--r", "lots").is_err());
    }

    #[test]
    fn caps() {
        assert_eq!(cap_from_name("CAP_CHOWN"), Some(0));
        assert_eq!(cap_from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_from_name("CAP_NOPE"), None);
        assert_eq!(cap_from_name("cap_chown"), None);
        for (i, n) in CAP_NAMES.iter().enumerate() {
            assert_eq!(cap_from_name(n), Some(i as u32));
            assert_eq!(cap_name(i as u32), Some(*n));
        }
        assert_eq!(cap_name(41), None);
    }

    #[test]
    fn macvlan() {
        assert_eq!(parse_macvlan_mode("--m", "BRIDGE").unwrap(), "bridge");
        assert!(parse_macvlan_mode("--m", "source").is_err());
    }

    #[test]
    fn id_maps() {
        let me = IdKind::User.current();
        let r = parse_id_map("-u", "99999", IdKind::User, false).unwrap();
        assert_eq!((r.inside, r.outside, r.count), (99999, me, 1));
        let r = parse_id_map("-u", "0:65534:0", IdKind::User, true).unwrap();
        assert_eq!(
            (r.inside, r.outside, r.count, r.use_newidmap),
            (0, 65534, 1, true)
        );
        let r = parse_id_map("-g", "1:2:5", IdKind::Group, false).unwrap();
        assert_eq!((r.inside, r.outside, r.count), (1, 2, 5));
        // "root" exists on every Linux host we run on.
        let r = parse_id_map("-u", "root", IdKind::User, false).unwrap();
        assert_eq!(r.inside, 0);
        assert!(parse_id_map("-u", "no-such-user-xyz", IdKind::User, false).is_err());
        assert!(parse_id_map("-u", "0:0:many", IdKind::User, false).is_err());
        assert!(parse_id_map("-u", "-5", IdKind::User, false).is_err());
    }
}
