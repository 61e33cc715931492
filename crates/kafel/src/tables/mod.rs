//! Syscall tables, generated once by `tools/gen_tables.py` from the Linux kernel's
//! syscall tables (see `tools/data/`). Lookups are pure functions over static data.

mod aarch64;
mod arm;
mod x86;
mod x86_64;

use crate::Arch;

/// One named argument of a well-known syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arg {
    /// Its names: the kernel's first, then C Kafel's where it differs.
    pub(crate) names: &'static [&'static str],
    /// Size in bytes of the C type (2, 4 or 8). Anything but 8 is compared on the low
    /// 32 bits only, as Kafel does.
    pub(crate) size: u8,
}

/// One syscall of an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Syscall {
    pub(crate) nr: u32,
    /// The kernel's name for it.
    pub(crate) name: &'static str,
    /// Argument names, if the kernel declares the entry point with named arguments
    /// (or C Kafel's table names them).
    pub(crate) args: Option<&'static [Arg]>,
    /// C Kafel's argument names that read another argument here than in C Kafel,
    /// or have no kernel counterpart: `(name, C Kafel's position)`.
    pub(crate) kafel_diffs: &'static [(&'static str, u8)],
}

fn tables(arch: Arch) -> (&'static [Syscall], &'static [(&'static str, u16)]) {
    match arch {
        Arch::X86_64 => (x86_64::SYSCALLS, x86_64::NAMES),
        Arch::Aarch64 => (aarch64::SYSCALLS, aarch64::NAMES),
        Arch::X86 => (x86::SYSCALLS, x86::NAMES),
        Arch::Arm => (arm::SYSCALLS, arm::NAMES),
    }
}

/// Finds a syscall by name: the kernel's name or Kafel's entry-point spelling.
pub(crate) fn lookup(arch: Arch, name: &str) -> Option<&'static Syscall> {
    let (syscalls, names) = tables(arch);
    let idx = names.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
    syscalls.get(usize::from(names[idx].1))
}

/// Finds a syscall by number.
pub(crate) fn by_number(arch: Arch, nr: u32) -> Option<&'static Syscall> {
    let (syscalls, _) = tables(arch);
    let idx = syscalls.binary_search_by(|s| s.nr.cmp(&nr)).ok()?;
    syscalls.get(idx)
}

/// Every syscall of `arch`, sorted by number.
pub(crate) fn all(arch: Arch) -> &'static [Syscall] {
    tables(arch).0
}

/// Every accepted name of `arch` with its number, sorted by name.
pub(crate) fn all_names(arch: Arch) -> impl Iterator<Item = (&'static str, u32)> {
    let (syscalls, names) = tables(arch);
    names
        .iter()
        .map(move |(n, i)| (*n, syscalls[usize::from(*i)].nr))
}
