//! Resolution of a parsed program into the effective, flat rule list, and the
//! reference (direct) evaluation of that rule list.

use crate::ast::{guard_bit, BinOp, Entry, Expr, Filter, Program, SyscallSpec};
use crate::interp::SeccompData;
use crate::tables::{self, Syscall};
use crate::{Arch, Error, Warning, WarningKind, RET_KILL_THREAD, X32_SYSCALL_BIT};

/// A value operand of a comparison: an argument, a number, or `&`/`|` of values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Val {
    /// A 64-bit constant.
    Num(u64),
    /// Syscall argument `index` (0..6).
    Arg(u8),
    /// Bitwise and.
    And(Box<Val>, Box<Val>),
    /// Bitwise or.
    Or(Box<Val>, Box<Val>),
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>` (unsigned)
    Gt,
    /// `>=` (unsigned)
    Ge,
    /// `<` (unsigned)
    Lt,
    /// `<=` (unsigned)
    Le,
}

/// A resolved, simplified condition on the arguments of one syscall.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// A comparison. `wide` is false when every argument involved is narrower than
    /// 8 bytes and every constant fits in 32 bits: then only the low 32 bits of both
    /// sides are compared (Kafel's rule).
    Cmp {
        /// The operator.
        op: CmpOp,
        /// Left operand.
        l: Val,
        /// Right operand.
        r: Val,
        /// Compare all 64 bits (true) or the low 32 bits (false).
        wide: bool,
    },
    /// Logical not.
    Not(Box<Cond>),
    /// Logical and.
    And(Box<Cond>, Box<Cond>),
    /// Logical or.
    Or(Box<Cond>, Box<Cond>),
}

/// One rule of the effective policy: if the syscall number is `nr` and `cond` holds
/// (or is absent), the verdict is `action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Syscall number.
    pub nr: u32,
    /// `SECCOMP_RET_*` value.
    pub action: u32,
    /// Argument condition; `None` matches every call.
    pub cond: Option<Cond>,
}

/// The effective policy: the main policy with every `USE` expanded, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Target architecture.
    pub arch: Arch,
    /// Rules in source order; the first matching one decides.
    pub rules: Vec<Rule>,
    /// Verdict when no rule matches (the `DEFAULT`, or KILL).
    pub default_action: u32,
    /// `#pragma x32`: on x86_64, numbers at or above [`X32_SYSCALL_BIT`] are
    /// decided by the rules and the default. When false (the default), they get
    /// the foreign-architecture verdict (KILL) on x86_64. No effect elsewhere.
    pub x32_rules: bool,
    /// Warnings for `--check` (see [`Warning`]).
    pub warnings: Vec<Warning>,
}

impl Val {
    /// The value for the given arguments.
    pub fn eval(&self, args: &[u64; 6]) -> u64 {
        match self {
            Val::Num(n) => *n,
            Val::Arg(i) => args[usize::from(*i)],
            Val::And(a, b) => a.eval(args) & b.eval(args),
            Val::Or(a, b) => a.eval(args) | b.eval(args),
        }
    }
}

impl Cond {
    /// Whether the condition holds for the given arguments.
    pub fn eval(&self, args: &[u64; 6]) -> bool {
        match self {
            Cond::Cmp { op, l, r, wide } => {
                let (mut a, mut b) = (l.eval(args), r.eval(args));
                if !*wide {
                    a &= 0xffff_ffff;
                    b &= 0xffff_ffff;
                }
                match op {
                    CmpOp::Eq => a == b,
                    CmpOp::Ne => a != b,
                    CmpOp::Gt => a > b,
                    CmpOp::Ge => a >= b,
                    CmpOp::Lt => a < b,
                    CmpOp::Le => a <= b,
                }
            }
            Cond::Not(c) => !c.eval(args),
            Cond::And(a, b) => a.eval(args) && b.eval(args),
            Cond::Or(a, b) => a.eval(args) || b.eval(args),
        }
    }
}

impl Policy {
    /// Decides a syscall directly from the rules (the reference semantics the
    /// compiled filter must match): foreign architecture, or on x86_64 a number
    /// with the x32 bit or above unless [`Policy::x32_rules`] → KILL; else the
    /// first rule for `nr` whose condition holds; else the default action.
    pub fn evaluate(&self, data: &SeccompData) -> u32 {
        if data.arch != self.arch.audit_arch() {
            return RET_KILL_THREAD;
        }
        let nr = data.nr as u32;
        if self.x32_is_foreign() && nr >= X32_SYSCALL_BIT {
            return RET_KILL_THREAD;
        }
        self.rules
            .iter()
            .find(|r| r.nr == nr && r.cond.as_ref().is_none_or(|c| c.eval(&data.args)))
            .map_or(self.default_action, |r| r.action)
    }
}

impl Policy {
    /// Whether numbers with the x32 bit get the foreign-architecture verdict.
    pub(crate) fn x32_is_foreign(&self) -> bool {
        self.arch == Arch::X86_64 && !self.x32_rules
    }
}

/// The arguments a filter's expression may name: every name of each argument
/// (by index) and its size, and the table entry they come from.
fn filter_args(filter: &Filter, arch: Arch) -> (Vec<(Vec<String>, u8)>, Option<&'static Syscall>) {
    if let Some(custom) = &filter.custom_args {
        // On a 32-bit architecture an argument register holds 32 bits.
        let size = if arch.is_32bit() { 4 } else { 8 };
        return (
            custom.iter().map(|n| (vec![n.clone()], size)).collect(),
            None,
        );
    }
    match &filter.spec {
        SyscallSpec::Name(name, _) => {
            let sys = tables::lookup(arch, name);
            let args = sys
                .and_then(|s| s.args)
                .unwrap_or(&[])
                .iter()
                .map(|a| (a.names.iter().map(|n| (*n).to_owned()).collect(), a.size))
                .collect();
            (args, sys)
        }
        SyscallSpec::Nr(_) => (Vec::new(), None),
    }
}

/// The warning for C Kafel argument name `name` of `sys`, read here at `ours`
/// and by C Kafel at `kafel`.
fn kafel_arg_warning(sys: &Syscall, name: &str, ours: usize, kafel: u8) -> String {
    let args = sys.args.unwrap_or(&[]);
    let kernel_name = |i: usize| {
        args.get(i)
            .and_then(|a| a.names.first().copied())
            .unwrap_or("(unnamed)")
    };
    let kernel_names: Vec<&str> = (0..args.len()).map(kernel_name).collect();
    if ours == usize::from(kafel) {
        format!(
            "'{name}' is C Kafel's name for argument {kafel} of {s}, which the kernel \
             declares as '{k}'; the check reads that argument, as C Kafel's does, but it \
             is not what the name says. The kernel's arguments of {s} are: {list}",
            s = sys.name,
            k = kernel_name(ours),
            list = kernel_names.join(", ")
        )
    } else {
        format!(
            "'{name}' of {s} reads argument {ours} here, where the kernel passes it; C \
             Kafel's table reads argument {kafel} (the kernel's '{k}') for it, so C Kafel \
             compiles this check differently. Write '{ours_name}' to say which is meant",
            s = sys.name,
            k = kernel_name(usize::from(kafel)),
            ours_name = kernel_name(ours)
        )
    }
}

/// Replaces identifiers by arguments; the first unknown one is an error. A C
/// Kafel name listed in the syscall's `kafel_diffs` adds a warning.
fn resolve_idents(
    expr: &mut Expr,
    args: &[(Vec<String>, u8)],
    sys: Option<&Syscall>,
    warnings: &mut Vec<Warning>,
) -> Result<(), Error> {
    match expr {
        Expr::Ident(name, loc) => match args.iter().position(|(n, _)| n.contains(name)) {
            Some(i) => {
                if let Some(sys) = sys {
                    if let Some(&(_, kafel)) = sys.kafel_diffs.iter().find(|(n, _)| n == name) {
                        warnings.push(loc.warning(
                            WarningKind::KafelArgument,
                            kafel_arg_warning(sys, name, i, kafel),
                        ));
                    }
                }
                *expr = Expr::Arg(i as u8, args[i].1);
                Ok(())
            }
            None => Err(loc.error(format!("Undefined identifier '{name}'"))),
        },
        Expr::Not(c) => resolve_idents(c, args, sys, warnings),
        Expr::Bin(_, l, r) => {
            resolve_idents(l, args, sys, warnings)?;
            resolve_idents(r, args, sys, warnings)
        }
        Expr::Num(_) | Expr::Arg(..) | Expr::True | Expr::False => Ok(()),
    }
}

fn cmp_holds(op: BinOp, a: u64, b: u64) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Neq => a != b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        _ => false,
    }
}

/// Kafel's expression simplification. It matters for the verdict only through the
/// 32/64-bit comparison rule: e.g. `fd & 0xffffffffffffffff == 1` becomes `fd == 1`
/// and then compares 32 bits for a 4-byte `fd`.
fn simplify(expr: Expr) -> Expr {
    match expr {
        Expr::Not(c) => match simplify(*c) {
            Expr::True => Expr::False,
            Expr::False => Expr::True,
            c => Expr::Not(Box::new(c)),
        },
        Expr::Bin(op, l, r) => {
            let (l, r) = (simplify(*l), simplify(*r));
            match (op, l, r) {
                (BinOp::BitAnd, Expr::Num(a), Expr::Num(b)) => Expr::Num(a & b),
                (BinOp::BitOr, Expr::Num(a), Expr::Num(b)) => Expr::Num(a | b),
                (op, Expr::Num(a), Expr::Num(b)) if op.is_comparison() => {
                    if cmp_holds(op, a, b) {
                        Expr::True
                    } else {
                        Expr::False
                    }
                }
                (BinOp::And, l, r) => match (l, r) {
                    (Expr::False, _) | (_, Expr::False) => Expr::False,
                    (Expr::True, x) | (x, Expr::True) => x,
                    (l, r) => Expr::Bin(BinOp::And, Box::new(l), Box::new(r)),
                },
                (BinOp::Or, l, r) => match (l, r) {
                    (Expr::True, _) | (_, Expr::True) => Expr::True,
                    (Expr::False, x) | (x, Expr::False) => x,
                    (l, r) => Expr::Bin(BinOp::Or, Box::new(l), Box::new(r)),
                },
                (BinOp::BitAnd, Expr::Num(0), _) | (BinOp::BitAnd, _, Expr::Num(0)) => Expr::Num(0),
                (BinOp::BitAnd, Expr::Num(u64::MAX), x)
                | (BinOp::BitAnd, x, Expr::Num(u64::MAX)) => x,
                (BinOp::BitOr, Expr::Num(u64::MAX), _) | (BinOp::BitOr, _, Expr::Num(u64::MAX)) => {
                    Expr::Num(u64::MAX)
                }
                (BinOp::BitOr, Expr::Num(0), x) | (BinOp::BitOr, x, Expr::Num(0)) => x,
                (op, Expr::Arg(a, _), Expr::Arg(b, _)) if op.is_comparison() && a == b => {
                    if matches!(op, BinOp::Ge | BinOp::Le | BinOp::Eq) {
                        Expr::True
                    } else {
                        Expr::False
                    }
                }
                (op, l, r) => Expr::Bin(op, Box::new(l), Box::new(r)),
            }
        }
        e => e,
    }
}

/// Kafel's rule: a comparison needs 64 bits if an 8-byte argument or a constant
/// above `u32::MAX` takes part in it.
fn needs_64(expr: &Expr) -> bool {
    match expr {
        Expr::Num(n) => *n > u64::from(u32::MAX),
        Expr::Arg(_, size) => *size == 8,
        Expr::Bin(_, l, r) => needs_64(l) || needs_64(r),
        _ => false,
    }
}

fn to_val(expr: &Expr) -> Val {
    match expr {
        Expr::Num(n) => Val::Num(*n),
        Expr::Arg(i, _) => Val::Arg(*i),
        Expr::Bin(BinOp::BitAnd, l, r) => Val::And(Box::new(to_val(l)), Box::new(to_val(r))),
        Expr::Bin(BinOp::BitOr, l, r) => Val::Or(Box::new(to_val(l)), Box::new(to_val(r))),
        // The parser only builds values from the cases above.
        _ => Val::Num(0),
    }
}

fn to_cond(expr: &Expr) -> Cond {
    match expr {
        Expr::Not(c) => Cond::Not(Box::new(to_cond(c))),
        Expr::Bin(BinOp::And, l, r) => Cond::And(Box::new(to_cond(l)), Box::new(to_cond(r))),
        Expr::Bin(BinOp::Or, l, r) => Cond::Or(Box::new(to_cond(l)), Box::new(to_cond(r))),
        Expr::Bin(op, l, r) => Cond::Cmp {
            op: match op {
                BinOp::Eq => CmpOp::Eq,
                BinOp::Neq => CmpOp::Ne,
                BinOp::Gt => CmpOp::Gt,
                BinOp::Ge => CmpOp::Ge,
                BinOp::Lt => CmpOp::Lt,
                _ => CmpOp::Le,
            },
            wide: needs_64(l) || needs_64(r),
            l: to_val(l),
            r: to_val(r),
        },
        // True/False only survive simplification at the top, handled by the caller.
        _ => Cond::Not(Box::new(Cond::Cmp {
            op: CmpOp::Eq,
            l: Val::Num(0),
            r: Val::Num(0),
            wide: false,
        })),
    }
}

/// Checks every policy (used or not, in registration order, like Kafel) and
/// returns the effective rule list.
pub(crate) fn resolve(mut program: Program, arch: Arch) -> Result<Policy, Error> {
    let mut warnings = std::mem::take(&mut program.warnings);
    for policy in &mut program.policies {
        for entry in &mut policy.entries {
            let Entry::Block { filters, .. } = entry else {
                continue;
            };
            // A rule guarded by `ON` for other architectures only is not checked
            // (its syscall may not exist here), as in C Kafel.
            filters.retain(|f| f.archs.is_none_or(|m| m & guard_bit(arch) != 0));
            for filter in filters {
                if let SyscallSpec::Name(name, loc) = &filter.spec {
                    if tables::lookup(arch, name).is_none() {
                        return Err(loc.error(format!("Undefined identifier '{name}'")));
                    }
                }
                let (args, sys) = filter_args(filter, arch);
                if let Some(expr) = &mut filter.expr {
                    resolve_idents(expr, &args, sys, &mut warnings)?;
                }
            }
        }
    }

    let mut rules = Vec::new();
    let mut used = vec![false; program.policies.len()];
    let mut default_action = program.default.unwrap_or(RET_KILL_THREAD);
    if let Some(main) = program.main {
        if let Some(d) = expand(&program, main, arch, &mut used, &mut rules) {
            default_action = d;
        }
    }
    Ok(Policy {
        arch,
        rules,
        default_action,
        x32_rules: program.x32_rules,
        warnings,
    })
}

/// Appends the rules of the main policy, expanding `USE` in place (each policy at
/// most once, as Kafel does; a second copy could never match anyway). Returns the
/// action of a policy-level `DEFAULT` reached, which ends the search. Iterative, so
/// long `USE` chains cannot exhaust the stack.
fn expand(
    program: &Program,
    main: usize,
    arch: Arch,
    used: &mut [bool],
    rules: &mut Vec<Rule>,
) -> Option<u32> {
    used[main] = true;
    let mut stack = vec![(main, 0usize)];
    while let Some((idx, pos)) = stack.pop() {
        let policy = &program.policies[idx];
        let Some(entry) = policy.entries.get(pos) else {
            if policy.default.is_some() {
                return policy.default;
            }
            continue;
        };
        stack.push((idx, pos + 1));
        match entry {
            Entry::Use(other) => {
                if !used[*other] {
                    used[*other] = true;
                    stack.push((*other, 0));
                }
            }
            Entry::Block { action, filters } => {
                for filter in filters {
                    let nr = match &filter.spec {
                        SyscallSpec::Nr(nr) => *nr,
                        SyscallSpec::Name(name, _) => match tables::lookup(arch, name) {
                            Some(s) => s.nr,
                            None => continue, // rejected by `resolve` before
                        },
                    };
                    let cond = match filter.expr.clone().map(simplify) {
                        None | Some(Expr::True) => None,
                        Some(Expr::False) => continue,
                        Some(e) => Some(to_cond(&e)),
                    };
                    rules.push(Rule {
                        nr,
                        action: *action,
                        cond,
                    });
                }
            }
        }
    }
    None
}
