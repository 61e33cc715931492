//! Recursive-descent parser for the Kafel language.
//!
//! The accepted language is Kafel's grammar:
//!
//! ```text
//! program     := stmt+
//! stmt        := '#' define IDENT NUMBER | POLICY IDENT '{' [stmts [DEFAULT action]] '}'
//!              | stmts | DEFAULT action
//! stmts       := pstmt (',' pstmt)*
//! pstmt       := USE IDENT | action '{' [filter (',' filter)*] '}'
//! action      := ALLOW | LOG | KILL | KILL_THREAD | DENY | KILL_PROCESS | USER_NOTIF
//!              | ERRNO '(' n ')' | TRAP '(' n ')' | TRACE '(' n ')'
//! filter      := sysid ['(' [IDENT (',' IDENT)*] ')'] [guard] ['{' [bool_expr] '}']
//! guard       := ON IDENT | ON '{' IDENT (',' IDENT)* '}'
//! pragma      := '#' pragma IDENT        (extension: `#pragma x32`)
//! sysid       := IDENT | SYSCALL '[' n ']'
//! bool_expr   := or (',' or)*          or  := and ('||' and)*    and := prim ('&&' prim)*
//! prim        := '(' bool_expr ')' | '!' prim | bitor CMP bitor
//! bitor       := bitand ('|' bitand)*   bitand := operand ('&' operand)*
//! operand     := NUMBER | IDENT | '(' bitor ')'
//! ```
//!
//! Semantic checks done while parsing (as Kafel does): policy redefinition, `USE` of
//! an undefined (or later-defined) policy, duplicate `DEFAULT`, constant
//! redefinition with another value, action value ranges, duplicate/too many custom
//! argument names, expression depth.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::ast::{
    BinOp, Entry, Expr, Filter, PolicyDef, Program, SyscallSpec, GUARD_ARCHS, MAX_EXPRESSION_DEPTH,
};
use crate::lexer::{Lexer, Loc, Tok, Token};
use crate::{
    Error, WarningKind, MAX_ERRNO, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD,
    RET_LOG, RET_TRACE, RET_TRAP, RET_USER_NOTIF,
};
/// Largest `TRAP(n)` / `TRACE(n)` (16-bit `SECCOMP_RET_DATA`).
pub(crate) const MAX_RET_DATA: u64 = 0xffff;
/// Maximum number of syscall arguments.
pub(crate) const MAX_ARGS: usize = 6;
/// Maximum nesting of parentheses and `!` (protects the parser's stack).
const MAX_NESTING: u32 = 100;

pub(crate) struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<Token>,
    consts: HashMap<String, u64>,
    program: Program,
    by_name: HashMap<String, usize>,
    nesting: u32,
}

/// An expression being parsed, with what Kafel tracks about it.
struct Pe {
    expr: Expr,
    depth: u32,
    loc: Loc,
    /// A condition (comparison or logic) rather than a value.
    is_bool: bool,
}

fn syntax_error(token: &Token, expecting: &[&str]) -> Error {
    let mut msg = format!("syntax error, unexpected {}", token.tok.display_name());
    if !expecting.is_empty() {
        msg.push_str(", expecting ");
        msg.push_str(&expecting.join(" or "));
    }
    token.loc.error(msg)
}

fn is_action_start(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Allow
            | Tok::Log
            | Tok::Kill
            | Tok::KillProcess
            | Tok::Deny
            | Tok::Errno
            | Tok::Trap
            | Tok::Trace
            | Tok::UserNotif
    )
}

fn comparison(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Gt => BinOp::Gt,
        Tok::Lt => BinOp::Lt,
        Tok::Ge => BinOp::Ge,
        Tok::Le => BinOp::Le,
        Tok::Eq => BinOp::Eq,
        Tok::Neq => BinOp::Neq,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    pub(crate) fn new(text: &str, include_paths: &'a [PathBuf]) -> Parser<'a> {
        Parser {
            lex: Lexer::new(text, include_paths),
            peeked: None,
            consts: HashMap::new(),
            program: Program::default(),
            by_name: HashMap::new(),
            nesting: 0,
        }
    }

    fn peek(&mut self) -> Result<&Token, Error> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Token, Error> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next_token(),
        }
    }

    fn expect(&mut self, want: Tok, expecting: &[&str]) -> Result<Token, Error> {
        let t = self.next()?;
        if t.tok == want {
            Ok(t)
        } else {
            Err(syntax_error(&t, expecting))
        }
    }

    fn expect_ident(&mut self) -> Result<(String, Loc), Error> {
        let t = self.next()?;
        match t.tok {
            Tok::Ident(name) => Ok((name, t.loc)),
            _ => Err(syntax_error(&t, &["IDENTIFIER"])),
        }
    }

    /// A number: a literal or, as an extension, a `#define`d constant.
    fn expect_number(&mut self) -> Result<(u64, Loc), Error> {
        let t = self.next()?;
        match &t.tok {
            Tok::Number(n) => Ok((*n, t.loc)),
            Tok::Ident(name) if self.consts.contains_key(name) => Ok((self.consts[name], t.loc)),
            _ => Err(syntax_error(&t, &["NUMBER"])),
        }
    }

    /// Parses a whole program.
    pub(crate) fn parse_program(mut self) -> Result<Program, Error> {
        let mut any = false;
        loop {
            let t = self.peek()?.clone();
            match &t.tok {
                Tok::Eof if any => break,
                Tok::Hash => self.const_def()?,
                Tok::Policy => self.policy_def()?,
                Tok::Default => {
                    self.next()?;
                    let action = self.action()?;
                    if self.program.default.is_some() {
                        return Err(t.loc.error("Redefinition of default action"));
                    }
                    self.program.default = Some(action);
                }
                tok if *tok == Tok::Use || is_action_start(tok) => {
                    let entries = self.statements(false)?;
                    match self.program.main {
                        Some(m) => self.program.policies[m].entries.extend(entries),
                        None => {
                            self.program.main = Some(self.program.policies.len());
                            self.program.policies.push(PolicyDef {
                                entries,
                                default: None,
                            });
                        }
                    }
                }
                _ => return Err(syntax_error(&t, &[])),
            }
            any = true;
        }
        Ok(self.program)
    }

    fn const_def(&mut self) -> Result<(), Error> {
        let hash = self.next()?;
        if self.peek()?.tok == Tok::Pragma {
            return self.pragma();
        }
        self.expect(Tok::Define, &["DEFINE"])?;
        let (name, _) = self.expect_ident()?;
        let t = self.next()?;
        let Tok::Number(value) = t.tok else {
            return Err(syntax_error(&t, &["NUMBER"]));
        };
        match self.consts.get(&name) {
            Some(&old) if old != value => Err(hash.loc.error(format!(
                "Redefinition of constant '{name}' with different value (was: {old} is: {value})"
            ))),
            Some(_) => Ok(()),
            None => {
                self.consts.insert(name, value);
                Ok(())
            }
        }
    }

    /// Extension: `#pragma x32` (x32 syscall numbers are decided by the rules on
    /// x86_64 instead of getting the foreign-architecture verdict).
    fn pragma(&mut self) -> Result<(), Error> {
        self.next()?;
        let (name, loc) = self.expect_ident()?;
        match name.as_str() {
            "x32" => {
                self.program.x32_rules = true;
                Ok(())
            }
            _ => Err(loc.error(format!(
                "Unknown pragma '{name}'; the only pragma is '#pragma x32' (let the rules \
                 decide x32 syscall numbers on x86_64)"
            ))),
        }
    }

    /// One architecture name of an `ON` guard, as its bit.
    fn guard_arch(&mut self) -> Result<(u32, String, Loc), Error> {
        let (name, loc) = self.expect_ident()?;
        match GUARD_ARCHS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(&(_, bit)) => Ok((bit, name, loc)),
            None => Err(loc.error(format!(
                "Unknown architecture `{name}'; use x86_64 (amd64), aarch64 (arm64), \
                 x86 (i386), arm, mips (mipso32), mips64, riscv64 (rv64) or m68k"
            ))),
        }
    }

    /// `ON arch` or `ON { arch, ... }` (C Kafel's architecture guard).
    fn guard(&mut self) -> Result<u32, Error> {
        self.expect(Tok::On, &["ON"])?;
        if self.peek()?.tok != Tok::LBrace {
            return Ok(self.guard_arch()?.0);
        }
        self.next()?;
        let mut mask = 0;
        loop {
            let (bit, name, loc) = self.guard_arch()?;
            if mask & bit != 0 {
                return Err(loc.error(format!(
                    "Duplicate architecture `{name}' in the ON list; name each architecture once"
                )));
            }
            mask |= bit;
            let t = self.next()?;
            match t.tok {
                Tok::Comma => continue,
                Tok::RBrace => return Ok(mask),
                _ => return Err(syntax_error(&t, &["','", "'}'"])),
            }
        }
    }

    fn policy_def(&mut self) -> Result<(), Error> {
        let kw = self.next()?;
        let (name, _) = self.expect_ident()?;
        self.expect(Tok::LBrace, &["'{'"])?;
        let mut entries = Vec::new();
        let mut default = None;
        if self.peek()?.tok != Tok::RBrace {
            if self.peek()?.tok != Tok::Default {
                entries = self.statements(true)?;
            }
            // Extension (nsjail's README writes it): a trailing `DEFAULT action`.
            if self.peek()?.tok == Tok::Default {
                self.next()?;
                default = Some(self.action()?);
            }
        }
        let close = self.next()?;
        if close.tok != Tok::RBrace {
            return Err(syntax_error(&close, &["'}'", "','"]));
        }
        if self.by_name.contains_key(&name) {
            return Err(kw.loc.error(format!("Redefinition of policy '{name}'")));
        }
        self.by_name.insert(name, self.program.policies.len());
        self.program.policies.push(PolicyDef { entries, default });
        Ok(())
    }

    /// `pstmt (',' pstmt)*`; inside a `POLICY`, a `DEFAULT` may follow a comma.
    fn statements(&mut self, in_policy: bool) -> Result<Vec<Entry>, Error> {
        let mut entries = vec![self.statement()?];
        while self.peek()?.tok == Tok::Comma {
            self.next()?;
            if in_policy && self.peek()?.tok == Tok::Default {
                break;
            }
            entries.push(self.statement()?);
        }
        Ok(entries)
    }

    fn statement(&mut self) -> Result<Entry, Error> {
        let t = self.peek()?.clone();
        if t.tok == Tok::Use {
            self.next()?;
            let (name, loc) = self.expect_ident()?;
            return match self.by_name.get(&name) {
                Some(&idx) => Ok(Entry::Use(idx)),
                None => Err(loc.error(format!("Undefined policy '{name}'"))),
            };
        }
        if !is_action_start(&t.tok) {
            return Err(syntax_error(&self.next()?, &[]));
        }
        let action = self.action()?;
        self.expect(Tok::LBrace, &["'{'"])?;
        let mut filters = Vec::new();
        if self.peek()?.tok == Tok::RBrace {
            self.next()?;
            return Ok(Entry::Block { action, filters });
        }
        loop {
            filters.push(self.filter()?);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => continue,
                Tok::RBrace => break,
                _ => return Err(syntax_error(&t, &["'}'", "','"])),
            }
        }
        Ok(Entry::Block { action, filters })
    }

    fn action(&mut self) -> Result<u32, Error> {
        let t = self.next()?;
        let (base, what, max) = match t.tok {
            Tok::Allow => return Ok(RET_ALLOW),
            Tok::Log => return Ok(RET_LOG),
            Tok::Kill | Tok::Deny => return Ok(RET_KILL_THREAD),
            Tok::KillProcess => return Ok(RET_KILL_PROCESS),
            Tok::UserNotif => return Ok(RET_USER_NOTIF),
            Tok::Errno => (RET_ERRNO, "Errno", MAX_RET_DATA),
            Tok::Trap => (RET_TRAP, "Trap", MAX_RET_DATA),
            Tok::Trace => (RET_TRACE, "Trace", MAX_RET_DATA),
            _ => return Err(syntax_error(&t, &[])),
        };
        self.expect(Tok::LParen, &["'('"])?;
        let (value, loc) = self.expect_number()?;
        if value > max {
            return Err(loc.error(format!("{what} value {value} out of range (0-{max})")));
        }
        self.expect(Tok::RParen, &["')'"])?;
        if base == RET_ERRNO && value > u64::from(MAX_ERRNO) {
            self.program.warnings.push(loc.warning(
                WarningKind::ErrnoAboveMax,
                format!(
                    "ERRNO({value}): the kernel caps the errno it returns at {MAX_ERRNO}, so \
                     the program sees {MAX_ERRNO}; use a value from 0 to {MAX_ERRNO}"
                ),
            ));
        }
        // `value <= 0xffff` was checked above.
        Ok(base | value as u32)
    }

    fn filter(&mut self) -> Result<Filter, Error> {
        let t = self.next()?;
        let spec = match t.tok {
            Tok::Ident(name) => match self.consts.get(&name) {
                // Like Kafel, a constant is used as a syscall number truncated to 32 bits.
                Some(&nr) => SyscallSpec::Nr(nr as u32),
                None => SyscallSpec::Name(name, t.loc),
            },
            Tok::Syscall => {
                self.expect(Tok::LBracket, &["'['"])?;
                let (nr, _) = self.expect_number()?;
                self.expect(Tok::RBracket, &["']'"])?;
                SyscallSpec::Nr(nr as u32)
            }
            _ => return Err(syntax_error(&t, &["IDENTIFIER", "SYSCALL"])),
        };
        let mut custom_args = None;
        if self.peek()?.tok == Tok::LParen {
            self.next()?;
            let mut names: Vec<String> = Vec::new();
            if self.peek()?.tok != Tok::RParen {
                loop {
                    let (name, loc) = self.expect_ident()?;
                    if names.contains(&name) {
                        return Err(loc.error(format!("Redefinition of argument '{name}'")));
                    }
                    if names.len() == MAX_ARGS {
                        return Err(loc.error("Too many arguments defined for syscall"));
                    }
                    names.push(name);
                    if self.peek()?.tok == Tok::Comma {
                        self.next()?;
                    } else {
                        break;
                    }
                }
            }
            self.expect(Tok::RParen, &["','", "')'"])?;
            custom_args = Some(names);
        }
        let archs = if self.peek()?.tok == Tok::On {
            Some(self.guard()?)
        } else {
            None
        };
        let mut expr = None;
        if self.peek()?.tok == Tok::LBrace {
            self.next()?;
            if self.peek()?.tok != Tok::RBrace {
                let e = self.bool_expr()?;
                self.need_bool(&e)?;
                expr = Some(e.expr);
            }
            self.expect(Tok::RBrace, &["'}'", "','"])?;
        }
        Ok(Filter {
            spec,
            archs,
            custom_args,
            expr,
        })
    }

    // ---- expressions -------------------------------------------------------

    fn need_bool(&mut self, e: &Pe) -> Result<(), Error> {
        if e.is_bool {
            Ok(())
        } else {
            let t = self.next()?;
            Err(syntax_error(&t, &[]))
        }
    }

    fn need_value(&mut self, e: &Pe) -> Result<(), Error> {
        if e.is_bool {
            let t = self.next()?;
            Err(syntax_error(&t, &[]))
        } else {
            Ok(())
        }
    }

    fn bin(op: BinOp, l: Pe, r: Pe) -> Result<Pe, Error> {
        if l.depth >= MAX_EXPRESSION_DEPTH || r.depth >= MAX_EXPRESSION_DEPTH {
            return Err(l.loc.error(format!(
                "Max expression depth ({MAX_EXPRESSION_DEPTH}) exceeded"
            )));
        }
        Ok(Pe {
            depth: l.depth.max(r.depth) + 1,
            is_bool: !matches!(op, BinOp::BitOr | BinOp::BitAnd),
            expr: Expr::Bin(op, Box::new(l.expr), Box::new(r.expr)),
            loc: l.loc,
        })
    }

    fn bool_expr(&mut self) -> Result<Pe, Error> {
        let mut l = self.or_expr()?;
        while self.peek()?.tok == Tok::Comma {
            self.need_bool(&l)?;
            self.next()?;
            let r = self.or_expr()?;
            self.need_bool(&r)?;
            l = Self::bin(BinOp::Or, l, r)?;
        }
        Ok(l)
    }

    fn or_expr(&mut self) -> Result<Pe, Error> {
        let mut l = self.and_expr()?;
        while self.peek()?.tok == Tok::LogicOr {
            self.need_bool(&l)?;
            self.next()?;
            let r = self.and_expr()?;
            self.need_bool(&r)?;
            l = Self::bin(BinOp::Or, l, r)?;
        }
        Ok(l)
    }

    fn and_expr(&mut self) -> Result<Pe, Error> {
        let mut l = self.unary()?;
        while self.peek()?.tok == Tok::LogicAnd {
            self.need_bool(&l)?;
            self.next()?;
            let r = self.unary()?;
            self.need_bool(&r)?;
            l = Self::bin(BinOp::And, l, r)?;
        }
        Ok(l)
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let t = self.next()?;
            return Err(t.loc.error(format!(
                "Max expression depth ({MAX_EXPRESSION_DEPTH}) exceeded"
            )));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Pe, Error> {
        if self.peek()?.tok != Tok::Bang {
            return self.comparison();
        }
        let bang = self.next()?;
        self.enter()?;
        let child = self.unary()?;
        self.nesting -= 1;
        self.need_bool(&child)?;
        if child.depth >= MAX_EXPRESSION_DEPTH {
            return Err(bang.loc.error(format!(
                "Max expression depth ({MAX_EXPRESSION_DEPTH}) exceeded"
            )));
        }
        Ok(Pe {
            depth: child.depth + 1,
            expr: Expr::Not(Box::new(child.expr)),
            loc: bang.loc,
            is_bool: true,
        })
    }

    fn comparison(&mut self) -> Result<Pe, Error> {
        let l = self.bitor()?;
        let Some(op) = comparison(&self.peek()?.tok) else {
            return Ok(l);
        };
        self.need_value(&l)?;
        self.next()?;
        let r = self.bitor()?;
        self.need_value(&r)?;
        Self::bin(op, l, r)
    }

    fn bitor(&mut self) -> Result<Pe, Error> {
        let mut l = self.bitand()?;
        while self.peek()?.tok == Tok::BitOr {
            self.need_value(&l)?;
            self.next()?;
            let r = self.bitand()?;
            self.need_value(&r)?;
            l = Self::bin(BinOp::BitOr, l, r)?;
        }
        Ok(l)
    }

    fn bitand(&mut self) -> Result<Pe, Error> {
        let mut l = self.operand()?;
        while self.peek()?.tok == Tok::BitAnd {
            self.need_value(&l)?;
            self.next()?;
            let r = self.operand()?;
            self.need_value(&r)?;
            l = Self::bin(BinOp::BitAnd, l, r)?;
        }
        Ok(l)
    }

    fn operand(&mut self) -> Result<Pe, Error> {
        let t = self.next()?;
        let leaf = |expr| Pe {
            expr,
            depth: 0,
            loc: t.loc.clone(),
            is_bool: false,
        };
        match &t.tok {
            Tok::Number(n) => Ok(leaf(Expr::Num(*n))),
            Tok::Ident(name) => Ok(match self.consts.get(name) {
                Some(&v) => leaf(Expr::Num(v)),
                None => leaf(Expr::Ident(name.clone(), t.loc.clone())),
            }),
            Tok::LParen => {
                self.enter()?;
                let mut inner = self.bool_expr()?;
                self.nesting -= 1;
                self.expect(Tok::RParen, &[])?;
                inner.loc = t.loc.clone();
                Ok(inner)
            }
            Tok::Bang => {
                // `!` is only valid where a condition starts; `unary` handles that.
                Err(syntax_error(&t, &[]))
            }
            _ => Err(syntax_error(&t, &[])),
        }
    }
}
