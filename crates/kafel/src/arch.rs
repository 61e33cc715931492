//! Target architectures and their `AUDIT_ARCH_*` values.

/// A target architecture for the generated filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 (`AUDIT_ARCH_X86_64`).
    X86_64,
    /// 64-bit ARM (`AUDIT_ARCH_AARCH64`).
    Aarch64,
    /// 32-bit x86, i386 (`AUDIT_ARCH_I386`).
    X86,
    /// 32-bit ARM, EABI and OABI (`AUDIT_ARCH_ARM`, little-endian).
    Arm,
}

/// `AUDIT_ARCH_X86_64` = `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_AARCH64` = `EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_I386` = `EM_386 | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// `AUDIT_ARCH_ARM` = `EM_ARM | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_ARM: u32 = 40 | 0x4000_0000;

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 4] = [Arch::X86_64, Arch::Aarch64, Arch::X86, Arch::Arm];

    /// The architecture this crate was compiled for (x86_64 when it is none of
    /// the supported ones, since no other table exists).
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else {
            Arch::X86_64
        }
    }

    /// Whether syscall arguments are 32 bits wide: every comparison then uses the
    /// low half of an argument only (unless a constant above `u32::MAX` takes part,
    /// as in C Kafel).
    pub fn is_32bit(self) -> bool {
        matches!(self, Arch::X86 | Arch::Arm)
    }

    /// The value the kernel puts in `seccomp_data.arch` for this architecture.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Parses an architecture name: `x86_64` (also `amd64`, `x86-64`), `aarch64`
    /// (also `arm64`), `i386` (also `x86`, `i686`) or `arm`.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            "i386" | "x86" | "i686" => Some(Arch::X86),
            "arm" => Some(Arch::Arm),
            _ => None,
        }
    }

    /// The canonical name (`x86_64`, `aarch64`, `i386` or `arm`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::X86 => "i386",
            Arch::Arm => "arm",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
