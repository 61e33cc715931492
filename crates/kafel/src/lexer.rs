//! Tokenizer for the Kafel language, including `#include` handling.
//!
//! Tokens follow Kafel's lexical rules: identifiers are `[A-Za-z][A-Za-z0-9_]*`,
//! numbers are decimal (optionally negative, wrapping to 64 bits), `0x` hex, `0`
//! octal or `0b` binary; `//` and `/* */` comments; `#include "f" ...` ends at a
//! newline or `;`. Lines and columns are 1-based and count bytes, as Kafel's do.

use std::path::PathBuf;
use std::rc::Rc;

use crate::{Error, Warning, WarningKind};

/// Maximum nesting of `#include` (Kafel's limit).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;

/// A position in some source: the top-level policy (`file == None`) or an included file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub(crate) line: u32,
    pub(crate) col: u32,
    pub(crate) file: Option<Rc<str>>,
}

impl Loc {
    pub(crate) fn warning(&self, kind: WarningKind, message: impl Into<String>) -> Warning {
        Warning {
            kind,
            line: self.line,
            col: self.col,
            message: message.into(),
            file: self.file.as_deref().map(str::to_owned),
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error {
            line: self.line,
            col: self.col,
            message: message.into(),
            file: self.file.as_deref().map(str::to_owned),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    Number(u64),
    Policy,
    Use,
    Default,
    Syscall,
    Define,
    Pragma,
    On,
    Allow,
    Log,
    Kill,
    KillProcess,
    Deny,
    Errno,
    Trap,
    Trace,
    UserNotif,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Bang,
    Hash,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    LogicOr,
    LogicAnd,
    BitOr,
    BitAnd,
    Eof,
}

impl Tok {
    /// The token's name as Kafel's (bison) parser prints it in syntax errors.
    pub(crate) fn display_name(&self) -> &'static str {
        match self {
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Number(_) => "NUMBER",
            Tok::Policy => "POLICY",
            Tok::Use => "USE",
            Tok::Default => "DEFAULT",
            Tok::Syscall => "SYSCALL",
            Tok::Define => "DEFINE",
            Tok::Pragma => "PRAGMA",
            Tok::On => "ON",
            Tok::Allow => "ALLOW",
            Tok::Log => "LOG",
            Tok::Kill => "KILL",
            Tok::KillProcess => "KILL_PROCESS",
            Tok::Deny => "DENY",
            Tok::Errno => "ERRNO",
            Tok::Trap => "TRAP",
            Tok::Trace => "TRACE",
            Tok::UserNotif => "USER_NOTIF",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::Comma => "','",
            Tok::Bang => "'!'",
            Tok::Hash => "'#'",
            Tok::Eq => "EQ",
            Tok::Neq => "NEQ",
            Tok::Lt => "LT",
            Tok::Le => "LE",
            Tok::Gt => "GT",
            Tok::Ge => "GE",
            Tok::LogicOr => "LOGIC_OR",
            Tok::LogicAnd => "LOGIC_AND",
            Tok::BitOr => "BIT_OR",
            Tok::BitAnd => "BIT_AND",
            Tok::Eof => "end of file",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) loc: Loc,
}

struct Source {
    text: Rc<str>,
    pos: usize,
    line: u32,
    col: u32,
    file: Option<Rc<str>>,
}

impl Source {
    fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes().get(self.pos + ahead).copied()
    }
    fn loc(&self) -> Loc {
        Loc {
            line: self.line,
            col: self.col,
            file: self.file.clone(),
        }
    }
    /// Consumes one byte, keeping line and column up to date.
    fn bump(&mut self) {
        if let Some(c) = self.peek(0) {
            self.pos += 1;
            if c == b'\n' {
                self.line = self.line.saturating_add(1);
                self.col = 1;
            } else {
                self.col = self.col.saturating_add(1);
            }
        }
    }
    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }
}

pub(crate) struct Lexer<'a> {
    stack: Vec<Source>,
    include_paths: &'a [PathBuf],
    /// Inside an `#include` directive (between `#include` and its `\n`/`;`).
    in_include: bool,
    /// Whitespace seen since the last file name of the directive.
    include_ws: bool,
    last_loc: Loc,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "SYSCALL" => Tok::Syscall,
        "ALLOW" => Tok::Allow,
        "LOG" => Tok::Log,
        "USER_NOTIF" => Tok::UserNotif,
        "ERRNO" => Tok::Errno,
        "KILL_PROCESS" => Tok::KillProcess,
        "KILL_THREAD" | "KILL" => Tok::Kill,
        "DENY" => Tok::Deny,
        "TRAP" => Tok::Trap,
        "TRACE" => Tok::Trace,
        "USE" => Tok::Use,
        "POLICY" => Tok::Policy,
        "DEFAULT" => Tok::Default,
        "define" => Tok::Define,
        // Extension: `#pragma x32` (see the crate docs).
        "pragma" => Tok::Pragma,
        "ON" => Tok::On,
        _ => return None,
    })
}

/// Renders a character for an "unexpected char" message.
fn char_at(src: &Source) -> String {
    let rest = &src.text[src.pos..];
    match rest.chars().next() {
        Some(c) if c.is_control() => c.escape_default().to_string(),
        Some(c) => c.to_string(),
        None => String::new(),
    }
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &str, include_paths: &'a [PathBuf]) -> Lexer<'a> {
        Lexer {
            stack: vec![Source {
                text: Rc::from(text),
                pos: 0,
                line: 1,
                col: 1,
                file: None,
            }],
            include_paths,
            in_include: false,
            include_ws: false,
            last_loc: Loc {
                line: 1,
                col: 1,
                file: None,
            },
        }
    }

    fn top(&mut self) -> &mut Source {
        // The stack is never empty: the top-level source is never popped.
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    /// Returns the next token, or the first lexical error.
    pub(crate) fn next_token(&mut self) -> Result<Token, Error> {
        let token = self.scan()?;
        self.last_loc = token.loc.clone();
        Ok(token)
    }

    fn scan(&mut self) -> Result<Token, Error> {
        loop {
            if self.in_include {
                self.scan_include()?;
                continue;
            }
            let src = self.top();
            let Some(c) = src.peek(0) else {
                if self.stack.len() > 1 {
                    self.stack.pop();
                    // Back in the including file, still inside its directive.
                    self.in_include = true;
                    self.include_ws = false;
                    continue;
                }
                // Like Kafel, the end of input is reported where the last token was.
                return Ok(Token {
                    tok: Tok::Eof,
                    loc: self.last_loc.clone(),
                });
            };
            let loc = src.loc();
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    src.bump();
                    continue;
                }
                b'/' if src.peek(1) == Some(b'/') => {
                    while let Some(c) = src.peek(0) {
                        if c == b'\n' {
                            break;
                        }
                        src.bump();
                    }
                    continue;
                }
                b'/' if src.peek(1) == Some(b'*') => {
                    src.bump_n(2);
                    loop {
                        match src.peek(0) {
                            None => return Err(loc.error("unterminated comment")),
                            Some(b'*') if src.peek(1) == Some(b'/') => {
                                src.bump_n(2);
                                break;
                            }
                            Some(_) => src.bump(),
                        }
                    }
                    continue;
                }
                b'#' if src.bytes()[src.pos..].starts_with(b"#include") => {
                    src.bump_n("#include".len());
                    self.in_include = true;
                    self.include_ws = false;
                    continue;
                }
                b'0'..=b'9' => return Self::number(src, loc),
                b'-' if matches!(src.peek(1), Some(b'1'..=b'9')) => return Self::number(src, loc),
                c if is_ident_start(c) => {
                    let start = src.pos;
                    while src.peek(0).is_some_and(is_ident_char) {
                        src.bump();
                    }
                    let word = &src.text[start..src.pos];
                    let tok = keyword(word).unwrap_or_else(|| Tok::Ident(word.to_owned()));
                    return Ok(Token { tok, loc });
                }
                _ => {}
            }
            let two = [c, src.peek(1).unwrap_or(0)];
            let (tok, len) = match &two {
                b"==" => (Tok::Eq, 2),
                b"!=" => (Tok::Neq, 2),
                b"<=" => (Tok::Le, 2),
                b">=" => (Tok::Ge, 2),
                b"||" => (Tok::LogicOr, 2),
                b"&&" => (Tok::LogicAnd, 2),
                _ => match c {
                    b'<' => (Tok::Lt, 1),
                    b'>' => (Tok::Gt, 1),
                    b'|' => (Tok::BitOr, 1),
                    b'&' => (Tok::BitAnd, 1),
                    b'[' => (Tok::LBracket, 1),
                    b']' => (Tok::RBracket, 1),
                    b'(' => (Tok::LParen, 1),
                    b')' => (Tok::RParen, 1),
                    b'{' => (Tok::LBrace, 1),
                    b'}' => (Tok::RBrace, 1),
                    b',' => (Tok::Comma, 1),
                    b'!' => (Tok::Bang, 1),
                    b'#' => (Tok::Hash, 1),
                    _ => {
                        return Err(loc.error(format!("unexpected char '{}'", char_at(src))));
                    }
                },
            };
            src.bump_n(len);
            return Ok(Token { tok, loc });
        }
    }

    fn number(src: &mut Source, loc: Loc) -> Result<Token, Error> {
        let start = src.pos;
        let (digits_start, radix) = match (src.peek(0), src.peek(1), src.peek(2)) {
            (Some(b'0'), Some(b'x'), Some(c)) if c.is_ascii_hexdigit() => (start + 2, 16),
            (Some(b'0'), Some(b'b'), Some(b'0' | b'1')) => (start + 2, 2),
            (Some(b'0'), Some(b'0'..=b'9'), _) => (start + 1, 8),
            (Some(b'-'), _, _) => (start + 1, 10),
            _ => (start, 10),
        };
        src.bump_n(digits_start - start);
        let accept = |c: u8| match radix {
            16 => c.is_ascii_hexdigit(),
            2 => c == b'0' || c == b'1',
            // Kafel's lexer takes every decimal digit after a leading 0 as part of
            // an octal number; 8 and 9 are rejected below.
            _ => c.is_ascii_digit(),
        };
        if radix == 10 && src.peek(0) == Some(b'0') {
            // A lone "0" (decimal numbers other than 0 never start with 0).
            src.bump();
        } else {
            while src.peek(0).is_some_and(accept) {
                src.bump();
            }
        }
        let text = &src.text[start..src.pos];
        let digits = &src.text[digits_start..src.pos];
        if radix == 8 && digits.bytes().any(|c| c == b'8' || c == b'9') {
            return Err(loc.error(format!(
                "number '{text}' is not a valid octal number (a leading 0 means octal)"
            )));
        }
        let magnitude = u64::from_str_radix(digits, radix)
            .map_err(|_| loc.error(format!("number '{text}' out of range")))?;
        let value = if text.starts_with('-') {
            magnitude.wrapping_neg()
        } else {
            magnitude
        };
        Ok(Token {
            tok: Tok::Number(value),
            loc,
        })
    }

    /// Scans inside an `#include` directive: whitespace, `"file"` names, and the
    /// terminating newline or `;`.
    fn scan_include(&mut self) -> Result<(), Error> {
        let depth = self.stack.len() - 1;
        let src = self.top();
        let loc = src.loc();
        let Some(c) = src.peek(0) else {
            return Err(loc.error("unterminated include statement"));
        };
        match c {
            b' ' | b'\t' | b'\r' => {
                src.bump();
                self.include_ws = true;
                Ok(())
            }
            b'\n' | b';' => {
                src.bump();
                self.in_include = false;
                Ok(())
            }
            b'"' => {
                let rest = &src.bytes()[src.pos + 1..];
                let Some(len) = rest.iter().position(|&b| b == b'"').filter(|&l| l > 0) else {
                    return Err(loc.error("unexpected char '\"'"));
                };
                let name = src.text[src.pos + 1..src.pos + 1 + len].to_owned();
                src.bump_n(len + 2);
                if !self.include_ws {
                    return Err(loc.error("unexpected filename"));
                }
                self.include_ws = false;
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(loc.error(format!(
                        "maximum include depth ({MAX_INCLUDE_DEPTH}) exceeded"
                    )));
                }
                let (path, text) = self.resolve_include(&name, &loc)?;
                self.stack.push(Source {
                    text: Rc::from(text),
                    pos: 0,
                    line: 1,
                    col: 1,
                    file: Some(Rc::from(path)),
                });
                self.in_include = false;
                Ok(())
            }
            _ => Err(loc.error(format!("unexpected char '{}'", char_at(src)))),
        }
    }

    /// Finds `name` under the search paths, in order, as Kafel does (`dir/name`).
    fn resolve_include(&self, name: &str, loc: &Loc) -> Result<(String, String), Error> {
        if self.include_paths.is_empty() {
            return Err(loc.error(format!(
                "could not include file '{name}' (no include search path is set; \
                 pass one in CompileOptions::include_paths)"
            )));
        }
        for dir in self.include_paths {
            let path = format!("{}/{}", dir.display(), name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Ok((path, text));
            }
        }
        Err(loc.error(format!("could not include file '{name}'")))
    }
}
