//! Kafel policy language → seccomp-BPF, in pure Rust (no syscalls, no `unsafe`; the
//! only I/O is reading `#include`d files from the caller's search paths).
//!
//! ```
//! let opts = kafel::CompileOptions { arch: kafel::Arch::X86_64, ..Default::default() };
//! let prog = kafel::compile("ALLOW { read, write { fd == 1 } } DEFAULT KILL", &opts).unwrap();
//! let data = kafel::interp::SeccompData {
//!     nr: 1, arch: kafel::Arch::X86_64.audit_arch(), args: [1, 0, 0, 0, 0, 0], ..Default::default()
//! };
//! assert_eq!(kafel::interp::run(&prog.filter, &data), Ok(kafel::RET_ALLOW));
//! ```
//!
//! # Language
//!
//! The language is Kafel's (<https://github.com/google/kafel>): `#define NAME n`,
//! `//` and `/* */` comments, `#include "file"` (looked up under
//! [`CompileOptions::include_paths`] only), `POLICY name { ... }`, `USE name` (only
//! policies defined earlier), file-scope action blocks forming the implicit main
//! policy, `DEFAULT action` (once; KILL when absent), actions `ALLOW`, `LOG`,
//! `KILL`/`KILL_THREAD`/`DENY`, `KILL_PROCESS`, `USER_NOTIF`, `ERRNO(n)`, `TRAP(n)`,
//! `TRACE(n)`, rules `name`, `name { expr }`, `name(a, b) { expr }`, `SYSCALL[n]`,
//! a `#define`d number as a syscall, and expressions with `== != < <= > >=`, `&`,
//! `|`, `&&`, `||`, `!`, parentheses and `,` (lowest-precedence or). The first
//! matching rule, in source order with `USE` expanded in place, decides.
//!
//! C Kafel's architecture guards are accepted: `name ON arch` and
//! `name ON { arch, ... }`, before an argument block (`fcntl ON x86_64 { fd == 3 }`);
//! a guarded rule applies only when compiling for a named architecture, and is
//! not checked otherwise (its syscall may not exist). Names are C Kafel's
//! (`x86_64`/`amd64`, `aarch64`/`arm64`, `x86`/`i386`, `arm`, `mips`/`mipso32`,
//! `mips64`, `riscv64`/`rv64`, `m68k`; any case); unknown or repeated ones are
//! errors.
//!
//! Differences from the C Kafel, all deliberate:
//! * syscall names are the kernel's names **and** Kafel's entry-point spellings
//!   (`umount2` and `umount`, `fstat` and `newfstat`, ...), and argument names
//!   are the kernel's **and** C Kafel's (`getrandom { len }` and `{ count }`);
//!   where C Kafel's table puts a name at another position than the kernel's
//!   declaration, the kernel's position wins and [`Program::warnings`] says so;
//! * on x86_64, syscall numbers from [`X32_SYSCALL_BIT`] up (the x32 ABI, which
//!   passes the `AUDIT_ARCH_X86_64` check) get the foreign-architecture verdict
//!   (KILL) unless the policy says `#pragma x32` (a file-scope statement; then
//!   the rules and `DEFAULT` decide them, as in C Kafel);
//! * `ERRNO(n)` is accepted up to 65535 as in C Kafel, with a warning above 4095
//!   (the kernel returns at most 4095);
//! * octal literals with digits 8 or 9 (`09`) are errors (C Kafel reads them as 0);
//! * `\r` counts as whitespace; an unterminated comment is reported where it starts;
//! * a `#define`d constant is accepted where a number is expected in `ERRNO(..)`,
//!   `TRAP(..)`, `TRACE(..)` and `SYSCALL[..]`;
//! * a `POLICY` body may end with `DEFAULT action` (nsjail's README writes it): when
//!   the search reaches it, it decides every syscall not matched before it;
//! * errors in `#include`d files are prefixed with the file's path.
//!
//! Architectures: x86_64, aarch64, i386 ([`Arch::X86`]) and 32-bit ARM
//! ([`Arch::Arm`], EABI and OABI numbers plus the ARM private syscalls
//! `breakpoint`, `cacheflush`, `usr26`, `usr32`, `set_tls`, `get_tls`). On the
//! 32-bit ones every argument is 32 bits wide, so comparisons use the low half of
//! an argument (a constant above `u32::MAX` still makes a comparison 64-bit, as
//! in C Kafel), and where a kernel name and C Kafel's spelling name different
//! syscalls, Kafel's wins (i386 `chown` is chown32, 212; the kernel's chown is
//! `chown16`).

mod arch;
mod ast;
pub mod bpf;
mod codegen;
pub mod interp;
mod lexer;
mod parser;
mod policy;
mod tables;

use std::path::PathBuf;

pub use arch::{Arch, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
pub use policy::{CmpOp, Cond, Policy, Rule, Val};

/// `__X32_SYSCALL_BIT`: on x86_64, a syscall number with this bit set uses the x32
/// ABI yet passes the `AUDIT_ARCH_X86_64` check. Unless the policy says
/// `#pragma x32`, every x86_64 filter gives numbers at or above it the
/// foreign-architecture verdict (KILL), as libseccomp does.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The largest errno the kernel returns for `ERRNO(n)` (`MAX_ERRNO`); a larger
/// `n` (accepted up to 65535, as in C Kafel) reaches the program as 4095.
pub const MAX_ERRNO: u32 = 4095;

/// `SECCOMP_RET_KILL_THREAD` (also `SECCOMP_RET_KILL`): Kafel's `KILL`/`DENY`.
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_TRAP` (the low 16 bits carry the `TRAP(n)` value).
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO` (the low 16 bits carry the errno).
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE` (the low 16 bits carry the `TRACE(n)` value).
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the action part of a return value.
pub const RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`: the data part of a return value.
pub const RET_DATA: u32 = 0x0000_ffff;

/// One BPF instruction, laid out like the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Compilation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Architecture the filter is for (its syscall numbers and `AUDIT_ARCH`).
    pub arch: Arch,
    /// Directories searched, in order, for `#include "name"` (as `dir/name`).
    /// Empty by default: any `#include` is then an error.
    pub include_paths: Vec<PathBuf>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            arch: Arch::native(),
            include_paths: Vec::new(),
        }
    }
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The BPF program, ready for `struct sock_fprog`.
    pub filter: Vec<SockFilter>,
    /// Number of syscall rules in the effective policy (main policy with `USE`
    /// expanded; rules whose condition is always false are not counted).
    pub rule_count: usize,
    /// What the policy says that is legal but likely not meant (see [`Warning`]);
    /// `nsjail --check` prints them. Empty for a clean policy.
    pub warnings: Vec<Warning>,
}

/// The kinds of [`Warning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// A C Kafel argument name that C Kafel's table puts at another position than
    /// the kernel's declaration of the syscall (`futex_wait { timeout }`,
    /// `statmount { smbuf }`, ...): it reads the kernel's argument here, so the
    /// filter differs from C Kafel's; or a Kafel name with no kernel counterpart,
    /// which reads Kafel's position (the same filter as C Kafel's).
    KafelArgument,
    /// `ERRNO(n)` with `n` above [`MAX_ERRNO`]: the program sees errno 4095.
    ErrnoAboveMax,
}

/// A policy that compiles but probably does not do what its author meant,
/// displayed as `LINE:COL: warning: message` (prefixed with `FILE:` in an
/// included file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Warning {
    /// What kind of warning it is.
    pub kind: WarningKind,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in bytes).
    pub col: u32,
    /// What is wrong and what to write instead.
    pub message: String,
    /// The included file the warning is in; `None` for the policy text itself.
    pub file: Option<String>,
}

impl Warning {
    fn render(&self) -> String {
        match &self.file {
            Some(f) => format!("{f}:{}:{}: warning: {}", self.line, self.col, self.message),
            None => format!("{}:{}: warning: {}", self.line, self.col, self.message),
        }
    }
}

/// A policy error, displayed as Kafel prints it: `LINE:COL: message` (1-based),
/// prefixed with `FILE:` when it is in an included file. Errors about the program
/// as a whole (too long) have line 0 and display as the bare message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Error {
    /// 1-based line, or 0 when the error has no position.
    pub line: u32,
    /// 1-based column (in bytes), or 0.
    pub col: u32,
    /// What is wrong.
    pub message: String,
    /// The included file the error is in; `None` for the policy text itself.
    pub file: Option<String>,
}

impl Error {
    fn without_location(message: impl Into<String>) -> Error {
        Error {
            line: 0,
            col: 0,
            message: message.into(),
            file: None,
        }
    }

    fn render(&self) -> String {
        match (&self.file, self.line) {
            (_, 0) => self.message.clone(),
            (Some(f), _) => format!("{f}:{}:{}: {}", self.line, self.col, self.message),
            (None, _) => format!("{}:{}: {}", self.line, self.col, self.message),
        }
    }
}

/// Parses and checks a policy and returns its effective rule list (useful to
/// evaluate syscalls directly with [`Policy::evaluate`]).
pub fn parse(policy: &str, opts: &CompileOptions) -> Result<Policy, Error> {
    let program = parser::Parser::new(policy, &opts.include_paths).parse_program()?;
    policy::resolve(program, opts.arch)
}

/// Compiles a Kafel policy to a seccomp-BPF program. [`Program::warnings`] lists
/// what a `--check` should report.
pub fn compile(policy: &str, opts: &CompileOptions) -> Result<Program, Error> {
    let resolved = parse(policy, opts)?;
    compile_policy(&resolved)
}

/// Compiles an already parsed policy.
pub fn compile_policy(policy: &Policy) -> Result<Program, Error> {
    Ok(Program {
        filter: codegen::generate(policy)?,
        rule_count: policy.rules.len(),
        warnings: policy.warnings.clone(),
    })
}

/// The number of syscall `name` on `arch` (kernel names and Kafel's spellings).
pub fn syscall_number(arch: Arch, name: &str) -> Option<u32> {
    tables::lookup(arch, name).map(|s| s.nr)
}

/// The kernel's name of syscall `nr` on `arch`.
pub fn syscall_name(arch: Arch, nr: u32) -> Option<&'static str> {
    tables::by_number(arch, nr).map(|s| s.name)
}

/// Every syscall of `arch` as `(kernel name, number)`, sorted by number.
pub fn syscalls(arch: Arch) -> impl Iterator<Item = (&'static str, u32)> {
    tables::all(arch).iter().map(|s| (s.name, s.nr))
}

/// Every name accepted for `arch` (kernel names and aliases) with its number.
pub fn syscall_names(arch: Arch) -> impl Iterator<Item = (&'static str, u32)> {
    tables::all_names(arch)
}

/// The named arguments of syscall `name` on `arch` (the kernel's name of each), if
/// the kernel or C Kafel's table names them. See [`syscall_arg_aliases`] for every
/// accepted name. A position without a name (a register C Kafel's table skips)
/// is "".
pub fn syscall_arg_names(arch: Arch, name: &str) -> Option<Vec<&'static str>> {
    tables::lookup(arch, name)?.args.map(|a| {
        a.iter()
            .map(|a| a.names.first().copied().unwrap_or(""))
            .collect()
    })
}

/// Every accepted name of each argument of syscall `name` on `arch`: the kernel's
/// name first, then C Kafel's names for the same argument. `None` when the
/// syscall has no named arguments.
pub fn syscall_arg_aliases(arch: Arch, name: &str) -> Option<Vec<Vec<&'static str>>> {
    tables::lookup(arch, name)?
        .args
        .map(|a| a.iter().map(|a| a.names.to_vec()).collect())
}
