//! Parsed (not yet resolved) policy structures.

use crate::lexer::Loc;

/// Maximum depth of an expression tree (Kafel's `MAX_EXPRESSION_DEPTH`).
pub(crate) const MAX_EXPRESSION_DEPTH: u32 = 200;

/// Binary operators of the expression language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BinOp {
    And,
    Or,
    Gt,
    Lt,
    Ge,
    Le,
    Eq,
    Neq,
    BitOr,
    BitAnd,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le | BinOp::Eq | BinOp::Neq
        )
    }
}

/// An expression as parsed. Identifiers that name `#define`d constants are already
/// numbers; the others are resolved against the syscall's arguments later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    Num(u64),
    Ident(String, Loc),
    /// A resolved argument: index 0..6 and size in bytes.
    Arg(u8, u8),
    True,
    False,
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug)]
pub(crate) enum SyscallSpec {
    /// A syscall name, looked up in the target architecture's table.
    Name(String, Loc),
    /// `SYSCALL[n]` or a `#define`d constant.
    Nr(u32),
}

#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) spec: SyscallSpec,
    /// `ON arch` / `ON { arch, ... }`: the architectures the rule applies to (a
    /// set of `ARCH_*` bits); `None` for every architecture.
    pub(crate) archs: Option<u32>,
    /// `name(a, b, ...)`: argument names declared in the rule (each 8 bytes wide).
    pub(crate) custom_args: Option<Vec<String>>,
    pub(crate) expr: Option<Expr>,
}

#[derive(Clone, Debug)]
pub(crate) enum Entry {
    /// `USE name`: index into the policy list.
    Use(usize),
    /// `ACTION { filters }`: the action's seccomp return value.
    Block { action: u32, filters: Vec<Filter> },
}

#[derive(Clone, Debug)]
pub(crate) struct PolicyDef {
    pub(crate) entries: Vec<Entry>,
    /// Extension: `DEFAULT action` as the last statement of a `POLICY` body ends the
    /// first-match search there (see the crate docs).
    pub(crate) default: Option<u32>,
}

/// The whole parsed program.
#[derive(Clone, Debug, Default)]
pub(crate) struct Program {
    /// Policies in registration order (the implicit main policy is registered when
    /// its first file-scope statement ends, like Kafel's `@main`).
    pub(crate) policies: Vec<PolicyDef>,
    pub(crate) main: Option<usize>,
    pub(crate) default: Option<u32>,
    /// `#pragma x32`: x32 syscall numbers are decided by the rules.
    pub(crate) x32_rules: bool,
    /// Warnings found while parsing.
    pub(crate) warnings: Vec<crate::Warning>,
}

/// The architecture names C Kafel accepts after `ON` (case-insensitive), each
/// with its bit. Kafel knows more architectures than this crate has tables for;
/// a rule guarded by one of those only is accepted and applies nowhere here.
pub(crate) const GUARD_ARCHS: &[(&str, u32)] = &[
    ("arm", 1 << 0),
    ("aarch64", 1 << 1),
    ("arm64", 1 << 1),
    ("x86_64", 1 << 2),
    ("amd64", 1 << 2),
    ("x86", 1 << 3),
    ("i386", 1 << 3),
    ("mips", 1 << 4),
    ("mipso32", 1 << 4),
    ("mips64", 1 << 5),
    ("riscv64", 1 << 6),
    ("rv64", 1 << 6),
    ("m68k", 1 << 7),
];

/// The `ON` bit of a target architecture.
pub(crate) fn guard_bit(arch: crate::Arch) -> u32 {
    match arch {
        crate::Arch::Arm => 1 << 0,
        crate::Arch::Aarch64 => 1 << 1,
        crate::Arch::X86_64 => 1 << 2,
        crate::Arch::X86 => 1 << 3,
    }
}
