//! BPF code generation.
//!
//! Layout of the generated program:
//!
//! ```text
//! ld  [arch]
//! jeq #AUDIT_ARCH, dispatch, kill      ; foreign architecture -> KILL
//! ld  [nr]                             ; dispatch
//! jge #n ...                           ; balanced binary search over number ranges
//! ...                                  ; ret #action, or a jump into ...
//! jge #0x40000000, kill, default       ; x86_64: the search's last range only
//! argument checks per syscall          ; first matching rule wins
//! ```
//!
//! The x32 guard (numbers from 0x40000000 up get the foreign-architecture verdict)
//! is not a range of the search: that would add a leaf, and so a comparison on
//! some paths of ordinary numbers. All x32 numbers lie above the highest rule, in
//! the search's last range, so the guard is one `jge` in front of that range's
//! verdict: only numbers above the highest rule pay for it.
//!
//! Code is emitted backwards (from the end of the program), so every jump target
//! already has a position when the jump is written. A conditional jump reaches at
//! most 255 instructions ahead; when a target is farther, a `ret` for the same
//! action is re-emitted close by, or a `ja` (32-bit offset) trampoline is inserted.

use std::collections::{BTreeMap, HashMap};

use crate::bpf::*;
use crate::policy::{CmpOp, Cond, Policy, Val};
use crate::{Error, SockFilter, RET_KILL_THREAD, X32_SYSCALL_BIT};

const MAX_JUMP: usize = 255;

/// Where control goes: a verdict (a `ret` that can be placed anywhere) or an
/// already emitted instruction (index into the reversed buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Target {
    Ret(u32),
    At(usize),
}

struct Emitter {
    /// Instructions in reverse order.
    buf: Vec<SockFilter>,
    ret_cache: HashMap<u32, usize>,
    ja_cache: HashMap<usize, usize>,
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn too_complex() -> Error {
    Error::without_location("Required stack size exceeds available BPF memory")
}

/// The constant value of one 32-bit word of `v`, when it does not depend on the
/// arguments.
fn word_const(v: &Val, hi: bool) -> Option<u32> {
    match v {
        Val::Num(n) => Some(if hi { (n >> 32) as u32 } else { *n as u32 }),
        Val::Arg(_) => None,
        Val::And(a, b) => match (word_const(a, hi), word_const(b, hi)) {
            (Some(x), Some(y)) => Some(x & y),
            (Some(0), _) | (_, Some(0)) => Some(0),
            _ => None,
        },
        Val::Or(a, b) => match (word_const(a, hi), word_const(b, hi)) {
            (Some(x), Some(y)) => Some(x | y),
            (Some(u32::MAX), _) | (_, Some(u32::MAX)) => Some(u32::MAX),
            _ => None,
        },
    }
}

/// Scratch words needed to compute `v` (Sethi-Ullman numbering).
fn need(v: &Val, hi: bool) -> usize {
    if word_const(v, hi).is_some() {
        return 0;
    }
    match v {
        Val::Num(_) | Val::Arg(_) => 0,
        Val::And(a, b) | Val::Or(a, b) => {
            let (na, nb) = (need(a, hi), need(b, hi));
            if word_const(a, hi).is_some() || word_const(b, hi).is_some() {
                na.max(nb)
            } else if na == nb {
                na + 1
            } else {
                na.max(nb)
            }
        }
    }
}

/// Appends (in program order) code leaving word `hi` of `v` in A. Uses scratch
/// words `slot..`; X is clobbered.
fn load(v: &Val, hi: bool, slot: usize, out: &mut Vec<SockFilter>) -> Result<(), Error> {
    if let Some(c) = word_const(v, hi) {
        out.push(stmt(BPF_LD | BPF_IMM, c));
        return Ok(());
    }
    match v {
        // Numbers were handled by `word_const` above.
        Val::Num(_) => {}
        Val::Arg(i) => out.push(stmt(BPF_LD | BPF_W | BPF_ABS, arg_offset(*i, hi))),
        Val::And(a, b) | Val::Or(a, b) => {
            let (op, identity) = if matches!(v, Val::And(..)) {
                (BPF_AND, u32::MAX)
            } else {
                (BPF_OR, 0)
            };
            let (a, b) = match (word_const(a, hi), word_const(b, hi)) {
                (Some(_), None) => (b, a),
                _ => (a, b),
            };
            if let Some(c) = word_const(b, hi) {
                load(a, hi, slot, out)?;
                if c != identity {
                    out.push(stmt(BPF_ALU | op | BPF_K, c));
                }
                return Ok(());
            }
            // Both sides vary: compute the heavier first.
            let (heavy, light) = if need(b, hi) > need(a, hi) {
                (b, a)
            } else {
                (a, b)
            };
            load(heavy, hi, slot, out)?;
            if let Val::Arg(i) = &**light {
                out.push(stmt(BPF_MISC | BPF_TAX, 0));
                out.push(stmt(BPF_LD | BPF_W | BPF_ABS, arg_offset(*i, hi)));
            } else {
                if slot >= BPF_MEMWORDS {
                    return Err(too_complex());
                }
                out.push(stmt(BPF_ST, slot as u32));
                load(light, hi, slot + 1, out)?;
                out.push(stmt(BPF_LDX | BPF_W | BPF_MEM, slot as u32));
            }
            out.push(stmt(BPF_ALU | op | BPF_X, 0));
        }
    }
    Ok(())
}

/// Appends code leaving word `hi` of `l` in A and of `r` in X.
fn load_pair(l: &Val, r: &Val, hi: bool, out: &mut Vec<SockFilter>) -> Result<(), Error> {
    load(r, hi, 0, out)?;
    if let Val::Arg(i) = l {
        out.push(stmt(BPF_MISC | BPF_TAX, 0));
        out.push(stmt(BPF_LD | BPF_W | BPF_ABS, arg_offset(*i, hi)));
    } else {
        out.push(stmt(BPF_ST, 0));
        load(l, hi, 1, out)?;
        out.push(stmt(BPF_LDX | BPF_W | BPF_MEM, 0));
    }
    Ok(())
}

/// What a comparison instruction needs in its registers.
enum Operands<'a> {
    /// A = word of the value, compared with constant `k`.
    Konst(&'a Val, u32),
    /// A = word of the first, X = word of the second.
    Regs(&'a Val, &'a Val),
}

impl Emitter {
    fn new() -> Emitter {
        Emitter {
            buf: Vec::new(),
            ret_cache: HashMap::new(),
            ja_cache: HashMap::new(),
        }
    }

    fn push(&mut self, ins: SockFilter) -> usize {
        self.buf.push(ins);
        self.buf.len() - 1
    }

    /// Pushes forward-ordered code so that it runs right before what was emitted last.
    fn push_code(&mut self, code: &[SockFilter]) {
        for ins in code.iter().rev() {
            self.push(*ins);
        }
    }

    /// Instructions skipped by a jump from the next emitted instruction to `loc`.
    fn dist(&self, loc: usize) -> usize {
        self.buf.len() - loc - 1
    }

    /// A location for `t` reachable by a conditional jump emitted next.
    fn resolve(&mut self, t: Target) -> usize {
        match t {
            Target::Ret(action) => {
                if let Some(&loc) = self.ret_cache.get(&action) {
                    if self.dist(loc) <= MAX_JUMP {
                        return loc;
                    }
                }
                let loc = self.push(stmt(BPF_RET | BPF_K, action));
                self.ret_cache.insert(action, loc);
                loc
            }
            Target::At(loc) => {
                if self.dist(loc) <= MAX_JUMP {
                    return loc;
                }
                if let Some(&ja) = self.ja_cache.get(&loc) {
                    if self.dist(ja) <= MAX_JUMP {
                        return ja;
                    }
                }
                let k = self.dist(loc) as u32;
                let ja = self.push(stmt(BPF_JMP | BPF_JA, k));
                self.ja_cache.insert(loc, ja);
                ja
            }
        }
    }

    /// Emits `if (A op operand) goto t else goto f`; returns where it starts and
    /// whether an instruction was emitted (no: both targets are the same).
    fn jump(&mut self, code: u16, k: u32, t: Target, f: Target) -> (Target, bool) {
        if t == f {
            return (t, false);
        }
        loop {
            let lt = self.resolve(t);
            let lf = self.resolve(f);
            if self.dist(lt) <= MAX_JUMP && self.dist(lf) <= MAX_JUMP {
                let ins = SockFilter {
                    code: BPF_JMP | code,
                    jt: self.dist(lt) as u8,
                    jf: self.dist(lf) as u8,
                    k,
                };
                return (Target::At(self.push(ins)), true);
            }
        }
    }

    /// Makes `t` the instruction executed right after whatever is emitted next.
    fn fallthrough_to(&mut self, t: Target) {
        match t {
            Target::At(loc) if loc + 1 == self.buf.len() => {}
            Target::Ret(action) => {
                let loc = self.push(stmt(BPF_RET | BPF_K, action));
                self.ret_cache.insert(action, loc);
            }
            Target::At(loc) => {
                let k = self.dist(loc) as u32;
                self.push(stmt(BPF_JMP | BPF_JA, k));
            }
        }
    }

    /// Emits one jump on a 32-bit word with its register loads.
    fn cmp_insn(
        &mut self,
        jop: u16,
        ops: Operands<'_>,
        hi: bool,
        t: Target,
        f: Target,
    ) -> Result<Target, Error> {
        let mut code = Vec::new();
        let (src, k) = match ops {
            Operands::Konst(v, k) => {
                load(v, hi, 0, &mut code)?;
                (BPF_K, k)
            }
            Operands::Regs(l, r) => {
                load_pair(l, r, hi, &mut code)?;
                (BPF_X, 0)
            }
        };
        let (start, emitted) = self.jump(jop | src, k, t, f);
        if emitted {
            self.push_code(&code);
            return Ok(Target::At(self.buf.len() - 1));
        }
        Ok(start)
    }

    /// `if (word(l) jop word(r)) goto t else goto f` for one 32-bit word.
    fn cmp32<'v>(
        &mut self,
        mut jop: u16,
        mut l: &'v Val,
        mut r: &'v Val,
        hi: bool,
        mut t: Target,
        mut f: Target,
    ) -> Result<Target, Error> {
        let (lc, rc) = (word_const(l, hi), word_const(r, hi));
        if let (Some(a), Some(b)) = (lc, rc) {
            let holds = match jop {
                BPF_JEQ => a == b,
                BPF_JGT => a > b,
                _ => a >= b,
            };
            return Ok(if holds { t } else { f });
        }
        if lc.is_some() {
            // k op X  ==  X op' k
            std::mem::swap(&mut l, &mut r);
            match jop {
                BPF_JGT => {
                    jop = BPF_JGE;
                    std::mem::swap(&mut t, &mut f);
                }
                BPF_JGE => {
                    jop = BPF_JGT;
                    std::mem::swap(&mut t, &mut f);
                }
                _ => {}
            }
        }
        match word_const(r, hi) {
            Some(0) if jop == BPF_JGE => Ok(t),
            Some(u32::MAX) if jop == BPF_JGT => Ok(f),
            Some(0) if jop != BPF_JGE => {
                // (x & mask) == 0  /  (x & mask) > 0  ->  jset
                if let Val::And(a, b) = l {
                    let masked = match (word_const(a, hi), word_const(b, hi)) {
                        (None, Some(m)) => Some((&**a, m)),
                        (Some(m), None) => Some((&**b, m)),
                        _ => None,
                    };
                    if let Some((x, mask)) = masked {
                        let (tt, ff) = if jop == BPF_JEQ { (f, t) } else { (t, f) };
                        return self.cmp_insn(BPF_JSET, Operands::Konst(x, mask), hi, tt, ff);
                    }
                }
                self.cmp_insn(jop, Operands::Konst(l, 0), hi, t, f)
            }
            Some(k) => self.cmp_insn(jop, Operands::Konst(l, k), hi, t, f),
            None => self.cmp_insn(jop, Operands::Regs(l, r), hi, t, f),
        }
    }

    /// High-word step of a 64-bit `>`/`>=`: greater -> `g`, equal -> `e`, less -> `s`.
    fn cmp_hi_ordered<'v>(
        &mut self,
        mut l: &'v Val,
        mut r: &'v Val,
        mut g: Target,
        e: Target,
        mut s: Target,
    ) -> Result<Target, Error> {
        let (lc, rc) = (word_const(l, true), word_const(r, true));
        if let (Some(a), Some(b)) = (lc, rc) {
            return Ok(match a.cmp(&b) {
                std::cmp::Ordering::Greater => g,
                std::cmp::Ordering::Equal => e,
                std::cmp::Ordering::Less => s,
            });
        }
        if lc.is_some() {
            std::mem::swap(&mut l, &mut r);
            std::mem::swap(&mut g, &mut s);
        }
        let mut code = Vec::new();
        let (src, k) = match word_const(r, true) {
            Some(k) => {
                load(l, true, 0, &mut code)?;
                (BPF_K, k)
            }
            None => {
                load_pair(l, r, true, &mut code)?;
                (BPF_X, 0)
            }
        };
        let (eq, eq_emitted) = self.jump(BPF_JEQ | src, k, e, s);
        let (gt, gt_emitted) = self.jump(BPF_JGT | src, k, g, eq);
        if eq_emitted || gt_emitted {
            self.push_code(&code);
            return Ok(Target::At(self.buf.len() - 1));
        }
        Ok(gt)
    }

    fn cmp(
        &mut self,
        op: CmpOp,
        l: &Val,
        r: &Val,
        wide: bool,
        t: Target,
        f: Target,
    ) -> Result<Target, Error> {
        let (jop, t, f) = match op {
            CmpOp::Eq => (BPF_JEQ, t, f),
            CmpOp::Ne => (BPF_JEQ, f, t),
            CmpOp::Gt => (BPF_JGT, t, f),
            CmpOp::Ge => (BPF_JGE, t, f),
            CmpOp::Lt => (BPF_JGE, f, t),
            CmpOp::Le => (BPF_JGT, f, t),
        };
        let lo = self.cmp32(jop, l, r, false, t, f)?;
        if !wide {
            return Ok(lo);
        }
        if jop == BPF_JEQ {
            self.cmp32(BPF_JEQ, l, r, true, lo, f)
        } else {
            self.cmp_hi_ordered(l, r, t, lo, f)
        }
    }

    fn cond(&mut self, c: &Cond, t: Target, f: Target) -> Result<Target, Error> {
        match c {
            Cond::Cmp { op, l, r, wide } => self.cmp(*op, l, r, *wide, t, f),
            Cond::Not(c) => self.cond(c, f, t),
            Cond::And(a, b) => {
                let tb = self.cond(b, t, f)?;
                self.cond(a, tb, f)
            }
            Cond::Or(a, b) => {
                let fb = self.cond(b, t, f)?;
                self.cond(a, t, fb)
            }
        }
    }

    /// Binary search over `ranges` (sorted starts, the first is 0), as deep as a
    /// balanced one: no path is longer than ceil(log2(ranges)) comparisons.
    /// `known[i]` is how many of the architecture's syscalls lie below range `i`
    /// (one more entry: all of them). Within that depth, each split balances the
    /// syscalls on either side (ties: the middle), so the numbers programs call
    /// take the short paths, rather than gaps or numbers beyond the table.
    fn tree(&mut self, ranges: &[(u32, Target)], known: &[usize]) -> Target {
        let m = ranges.len();
        if m <= 1 {
            return ranges.first().map_or(Target::Ret(RET_KILL_THREAD), |r| r.1);
        }
        // Both sides must fit in a subtree of depth ceil(log2 m) - 1.
        let half = 1usize << (usize::BITS - (m - 1).leading_zeros() - 1);
        let (lo, hi) = ((m - half).max(1), half.min(m - 1));
        // `known` only grows, so the best cuts are one run of k: find it by binary
        // search (compile time), then take the cut in it nearest the middle.
        let (base, total) = (known[0], known[m] - known[0]);
        let cand = &known[lo..=hi];
        let off = |x: usize| (2 * (x - base)).abs_diff(total);
        let p = cand.partition_point(|&x| 2 * (x - base) < total);
        let best = [p.checked_sub(1), (p < cand.len()).then_some(p)]
            .into_iter()
            .flatten()
            .map(|i| off(cand[i]))
            .min()
            .unwrap_or(0);
        let first = lo + cand.partition_point(|&x| 2 * (x - base) < total && off(x) > best);
        let last = lo + cand.partition_point(|&x| 2 * (x - base) < total || off(x) <= best) - 1;
        let mid = (m / 2).clamp(first, last);
        let right = self.tree(&ranges[mid..], &known[mid..]);
        let left = self.tree(&ranges[..mid], &known[..=mid]);
        self.jump(BPF_JGE | BPF_K, ranges[mid].0, right, left).0
    }
}

/// One syscall's decision: conditional rules in order, then the verdict when none
/// of them matches.
type Chain<'a> = (Vec<(&'a Cond, u32)>, u32);

/// Compiles the effective policy to BPF.
pub(crate) fn generate(policy: &Policy) -> Result<Vec<SockFilter>, Error> {
    // On x86_64 numbers from the x32 bit up get the foreign-architecture verdict
    // (unless `#pragma x32`): rules for them can never match.
    let foreign_from = policy.x32_is_foreign().then_some(X32_SYSCALL_BIT);
    let mut chains: BTreeMap<u32, Chain<'_>> = BTreeMap::new();
    let mut decided: BTreeMap<u32, bool> = BTreeMap::new();
    for rule in &policy.rules {
        if foreign_from.is_some_and(|f| rule.nr >= f) {
            continue;
        }
        if decided.get(&rule.nr).copied().unwrap_or(false) {
            continue; // an earlier unconditional rule always wins
        }
        let chain = chains
            .entry(rule.nr)
            .or_insert_with(|| (Vec::new(), policy.default_action));
        match &rule.cond {
            Some(c) => chain.0.push((c, rule.action)),
            None => {
                chain.1 = rule.action;
                decided.insert(rule.nr, true);
            }
        }
    }

    let mut em = Emitter::new();
    // Argument checks at the end of the program, in descending order so that they
    // appear in ascending syscall order.
    let mut targets: BTreeMap<u32, Target> = BTreeMap::new();
    let mut seen: HashMap<&Chain<'_>, Target> = HashMap::new();
    for (&nr, chain) in chains.iter().rev() {
        let target = if let Some(&t) = seen.get(chain) {
            t
        } else {
            let mut t = Target::Ret(chain.1);
            for (cond, action) in chain.0.iter().rev() {
                t = em.cond(cond, Target::Ret(*action), t)?;
            }
            seen.insert(chain, t);
            t
        };
        targets.insert(nr, target);
    }

    // Number ranges with the same target, covering 0..=u32::MAX.
    let default = Target::Ret(policy.default_action);
    let mut ranges: Vec<(u32, Target)> = Vec::new();
    let mut add = |start: u32, t: Target| match ranges.last() {
        Some(&(_, last)) if last == t => {}
        _ => ranges.push((start, t)),
    };
    let mut next = 0u32;
    let mut covered = false;
    for (&nr, &t) in &targets {
        if nr > next {
            add(next, default);
        }
        add(nr, t);
        if nr == u32::MAX {
            covered = true;
            break;
        }
        next = nr + 1;
    }
    if !covered {
        add(next, default);
    }
    // The x32 guard: the last range holds every number from `from` up (rules there
    // were dropped above). `tree` emits right subtrees first, so the guard, emitted
    // now, lands right after the search's last comparison, its only predecessor.
    let mut guarded = false;
    if let (Some(from), Some(last)) = (foreign_from, ranges.last_mut()) {
        let kill = Target::Ret(RET_KILL_THREAD);
        if last.0 < from {
            let (t, emitted) = em.jump(BPF_JGE | BPF_K, from, kill, last.1);
            last.1 = t;
            guarded = emitted;
        } else {
            // The last range starts at `from` (a rule for `from - 1`): all x32.
            ranges.pop();
            if ranges.last().map(|r| r.1) != Some(kill) {
                ranges.push((from, kill));
            }
        }
    }

    let table = crate::tables::all(policy.arch);
    let mut known: Vec<usize> = ranges
        .iter()
        .map(|r| table.partition_point(|s| s.nr < r.0))
        .collect();
    known.push(table.len());
    let dispatch = em.tree(&ranges, &known);
    let dispatch = if ranges.len() > 1 || guarded {
        em.fallthrough_to(dispatch);
        Target::At(em.push(stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR)))
    } else {
        dispatch
    };
    let (entry, emitted) = em.jump(
        BPF_JEQ | BPF_K,
        policy.arch.audit_arch(),
        dispatch,
        Target::Ret(RET_KILL_THREAD),
    );
    if emitted {
        em.push(stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH));
    } else {
        em.fallthrough_to(entry);
    }

    let mut prog = em.buf;
    prog.reverse();
    if prog.len() > BPF_MAXINSNS {
        return Err(Error::without_location(format!(
            "the policy compiles to {} BPF instructions, more than the kernel's limit of \
             {BPF_MAXINSNS}; use fewer rules or simpler argument checks",
            prog.len()
        )));
    }
    Ok(prog)
}
