//! Protobuf text format, read the way C++ `TextFormat::Parser` reads it,
//! into any generated message through rust-protobuf's reflection.
//!
//! Why not `protobuf::text_format::parse_from_str`: it rejects text that
//! C++ protobuf (and therefore nsjail) accepts and that real configs use:
//! `field: { ... }` (colon before a message block), `[a, b]` lists for
//! repeated fields, `,`/`;` after a field, enum values given by number,
//! `True`/`t`/`1` booleans and adjacent string literals ("a" "b"). It also
//! reports a missing required field at 1:1 without naming it. The grammar is
//! small; the values are still stored through rust-protobuf's reflection so
//! presence and defaults stay exactly those of the generated code.

use std::collections::HashSet;

use protobuf::reflect::{
    FieldDescriptor, MessageDescriptor, ReflectValueBox, ReflectValueRef, RuntimeFieldType,
    RuntimeType,
};
use protobuf::{MessageDyn, MessageFull};

/// A text-format error with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What the parser expected or rejected.
    pub msg: String,
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

/// Where a top-level field was set (for "set at file:line" provenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLoc {
    /// Field name.
    pub field: String,
    /// 1-based line of the field name.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A number literal as written (no sign).
    Num(String),
    Str(Vec<u8>),
    Sym(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Num(s) => format!("number {s}"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Sym(c) => format!("'{c}'"),
            Tok::Eof => "end of file".to_string(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer {
            chars: s.char_indices().peekable(),
            line: 1,
            col: 1,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> TextError {
        TextError {
            line,
            col,
            msg: msg.into(),
        }
    }

    /// Next token with its start position.
    fn next(&mut self) -> Result<(Tok, usize, usize), TextError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        let (line, col) = (self.line, self.col);
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, line, col));
        };
        if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(c) = self.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            return Ok((Tok::Ident(s), line, col));
        }
        if c.is_ascii_digit() || c == '.' {
            let mut s = String::new();
            while let Some(c) = self.peek() {
                let exp_sign = (c == '-' || c == '+') && s.ends_with(['e', 'E']) && !is_hex(&s);
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exp_sign {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            return Ok((Tok::Num(s), line, col));
        }
        if c == '"' || c == '\'' {
            self.bump();
            let bytes = self.string_body(c, line, col)?;
            return Ok((Tok::Str(bytes), line, col));
        }
        self.bump();
        Ok((Tok::Sym(c), line, col))
    }

    fn string_body(&mut self, quote: char, line: usize, col: usize) -> Result<Vec<u8>, TextError> {
        let mut out = Vec::new();
        loop {
            let (el, ec) = (self.line, self.col);
            let Some(c) = self.bump() else {
                return Err(self.err(line, col, "string literal is not terminated"));
            };
            if c == quote {
                return Ok(out);
            }
            if c == '\n' {
                return Err(self.err(line, col, "string literal runs past the end of the line"));
            }
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let Some(e) = self.bump() else {
                return Err(self.err(el, ec, "string literal is not terminated"));
            };
            match e {
                'a' => out.push(0x07),
                'b' => out.push(0x08),
                'f' => out.push(0x0c),
                'n' => out.push(b'\n'),
                'r' => out.push(b'\r'),
                't' => out.push(b'\t'),
                'v' => out.push(0x0b),
                '\\' | '\'' | '"' | '?' => out.push(e as u8),
                '0'..='7' => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                v = v * 8 + d;
                                self.bump();
                            }
                            None => break,
                        }
                    }
                    if v > 0xff {
                        return Err(self.err(el, ec, "octal escape is above \\377"));
                    }
                    out.push(v as u8);
                }
                'x' | 'X' => {
                    let mut v = 0u32;
                    let mut n = 0;
                    while n < 2 {
                        match self.peek().and_then(|c| c.to_digit(16)) {
                            Some(d) => {
                                v = v * 16 + d;
                                self.bump();
                                n += 1;
                            }
                            None => break,
                        }
                    }
                    if n == 0 {
                        return Err(self.err(el, ec, "\\x escape needs a hex digit"));
                    }
                    out.push(v as u8);
                }
                'u' | 'U' => {
                    let want = if e == 'u' { 4 } else { 8 };
                    let mut v = 0u32;
                    for _ in 0..want {
                        match self.peek().and_then(|c| c.to_digit(16)) {
                            Some(d) => {
                                v = v.saturating_mul(16).saturating_add(d);
                                self.bump();
                            }
                            None => {
                                return Err(self.err(
                                    el,
                                    ec,
                                    format!("\\{e} escape needs {want} hex digits"),
                                ))
                            }
                        }
                    }
                    let Some(ch) = char::from_u32(v) else {
                        return Err(self.err(
                            el,
                            ec,
                            format!("\\{e} escape is not a Unicode scalar value"),
                        ));
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                other => {
                    return Err(self.err(el, ec, format!("invalid escape sequence '\\{other}'")));
                }
            }
        }
    }
}

fn is_hex(s: &str) -> bool {
    s.starts_with("0x") || s.starts_with("0X")
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    line: usize,
    col: usize,
    depth: usize,
}

/// Nesting limit, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Result<Self, TextError> {
        let mut lex = Lexer::new(s);
        let (tok, line, col) = lex.next()?;
        Ok(Parser {
            lex,
            tok,
            line,
            col,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Tok, TextError> {
        let (tok, line, col) = self.lex.next()?;
        self.line = line;
        self.col = col;
        Ok(std::mem::replace(&mut self.tok, tok))
    }

    fn err(&self, msg: impl Into<String>) -> TextError {
        TextError {
            line: self.line,
            col: self.col,
            msg: msg.into(),
        }
    }

    fn is_sym(&self, c: char) -> bool {
        self.tok == Tok::Sym(c)
    }

    fn eat_sym(&mut self, c: char) -> Result<bool, TextError> {
        if self.is_sym(c) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_sym(&mut self, c: char, what: &str) -> Result<(), TextError> {
        if self.eat_sym(c)? {
            Ok(())
        } else {
            Err(self.err(format!(
                "expected '{c}' {what}, found {}",
                self.tok.describe()
            )))
        }
    }

    /// Fields of one message until `end` (or end of file at top level).
    fn message_body(
        &mut self,
        msg: &mut dyn MessageDyn,
        desc: &MessageDescriptor,
        end: Option<char>,
        mut locs: Option<&mut Vec<FieldLoc>>,
    ) -> Result<(), TextError> {
        let mut seen: HashSet<i32> = HashSet::new();
        loop {
            match (&self.tok, end) {
                (Tok::Eof, None) => return Ok(()),
                (Tok::Eof, Some(c)) => {
                    return Err(self.err(format!(
                        "expected '{c}' to close the {} block, found end of file",
                        desc.name()
                    )))
                }
                (Tok::Sym(c), Some(e)) if *c == e => {
                    self.advance()?;
                    return Ok(());
                }
                _ => {}
            }
            let (line, col) = (self.line, self.col);
            let name = match self.advance()? {
                Tok::Ident(n) => n,
                Tok::Sym('[') => {
                    return Err(TextError {
                        line,
                        col,
                        msg: "extensions and Any fields are not part of nsjail's config".into(),
                    })
                }
                t => {
                    return Err(TextError {
                        line,
                        col,
                        msg: format!("expected a field name, found {}", t.describe()),
                    })
                }
            };
            let Some(field) = desc.field_by_name(&name) else {
                return Err(TextError {
                    line,
                    col,
                    msg: format!(
                        "message type \"{}\" has no field named \"{name}\"",
                        desc.full_name()
                    ),
                });
            };
            if !field.is_repeated_or_map() && !seen.insert(field.number()) {
                return Err(TextError {
                    line,
                    col,
                    msg: format!("non-repeated field \"{name}\" is specified multiple times"),
                });
            }
            if let Some(l) = locs.as_deref_mut() {
                l.push(FieldLoc {
                    field: name.clone(),
                    line,
                });
            }
            self.field_value(msg, &field)?;
            // Optional separator after a field, as C++ allows.
            if !self.eat_sym(',')? {
                self.eat_sym(';')?;
            }
        }
    }

    fn field_value(
        &mut self,
        msg: &mut dyn MessageDyn,
        field: &FieldDescriptor,
    ) -> Result<(), TextError> {
        let elem = match field.runtime_field_type() {
            RuntimeFieldType::Singular(t) | RuntimeFieldType::Repeated(t) => t,
            RuntimeFieldType::Map(..) => {
                return Err(self.err("map fields are not part of nsjail's config"))
            }
        };
        let is_msg = matches!(elem, RuntimeType::Message(_));
        if is_msg {
            self.eat_sym(':')?;
        } else {
            self.expect_sym(':', &format!("after field name \"{}\"", field.name()))?;
        }
        if field.is_repeated() && self.is_sym('[') {
            self.advance()?;
            if self.eat_sym(']')? {
                return Ok(());
            }
            loop {
                let v = self.value(&elem, field)?;
                field.mut_repeated(msg).push(v);
                if self.eat_sym(']')? {
                    return Ok(());
                }
                self.expect_sym(',', "or ']' in the list")?;
            }
        }
        if field.is_repeated() {
            let v = self.value(&elem, field)?;
            field.mut_repeated(msg).push(v);
        } else if let RuntimeType::Message(d) = &elem {
            let sub = field.mut_message(msg);
            self.message_block(sub, d)?;
        } else {
            let v = self.value(&elem, field)?;
            field.set_singular_field(msg, v);
        }
        Ok(())
    }

    fn message_block(
        &mut self,
        sub: &mut dyn MessageDyn,
        d: &MessageDescriptor,
    ) -> Result<(), TextError> {
        let end = if self.eat_sym('{')? {
            '}'
        } else if self.eat_sym('<')? {
            '>'
        } else {
            return Err(self.err(format!(
                "expected '{{' to open the {} block, found {}",
                d.name(),
                self.tok.describe()
            )));
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("messages are nested too deeply"));
        }
        self.message_body(sub, d, Some(end), None)?;
        self.depth -= 1;
        Ok(())
    }

    fn value(
        &mut self,
        t: &RuntimeType,
        field: &FieldDescriptor,
    ) -> Result<ReflectValueBox, TextError> {
        let fname = field.name();
        Ok(match t {
            RuntimeType::Message(d) => {
                let mut m = d.new_instance();
                self.message_block(&mut *m, d)?;
                ReflectValueBox::Message(m)
            }
            RuntimeType::String => {
                let bytes = self.strings(fname)?;
                match String::from_utf8(bytes) {
                    Ok(s) => ReflectValueBox::String(s),
                    Err(_) => {
                        return Err(self.err(format!(
                            "string field \"{fname}\" holds invalid UTF-8; use a bytes field or fix the escapes"
                        )))
                    }
                }
            }
            RuntimeType::VecU8 => ReflectValueBox::Bytes(self.strings(fname)?),
            RuntimeType::Bool => {
                let (line, col) = (self.line, self.col);
                let v = match self.advance()? {
                    Tok::Ident(s) if s == "true" || s == "True" || s == "t" => true,
                    Tok::Ident(s) if s == "false" || s == "False" || s == "f" => false,
                    Tok::Num(s) if s == "1" => true,
                    Tok::Num(s) if s == "0" => false,
                    other => {
                        return Err(TextError {
                            line,
                            col,
                            msg: format!(
                            "invalid value for boolean field \"{fname}\": {}; use true or false",
                            other.describe()
                        ),
                        })
                    }
                };
                ReflectValueBox::Bool(v)
            }
            RuntimeType::Enum(e) => {
                let (line, col) = (self.line, self.col);
                let neg = self.eat_sym('-')?;
                let tok = self.advance()?;
                let found = match &tok {
                    Tok::Ident(s) if !neg => e.value_by_name(s),
                    Tok::Num(s) => parse_int_lit(s)
                        .and_then(|v| i64::try_from(v).ok())
                        .map(|v| if neg { -v } else { v })
                        .and_then(|v| i32::try_from(v).ok())
                        .and_then(|v| e.value_by_number(v)),
                    _ => None,
                };
                match found {
                    Some(v) => ReflectValueBox::Enum(e.clone(), v.value()),
                    None => {
                        let allowed = e
                            .values()
                            .map(|v| v.name().to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(TextError {
                            line,
                            col,
                            msg: format!(
                                "unknown enumeration value {}{} for field \"{fname}\"; use one of {allowed}",
                                if neg { "-" } else { "" },
                                tok.describe()
                            ),
                        });
                    }
                }
            }
            RuntimeType::U32 | RuntimeType::U64 | RuntimeType::I32 | RuntimeType::I64 => {
                let (line, col) = (self.line, self.col);
                let neg = self.eat_sym('-')?;
                let tok = self.advance()?;
                let bad = |why: &str| TextError {
                    line,
                    col,
                    msg: format!("invalid value for integer field \"{fname}\": {why}"),
                };
                let Tok::Num(s) = &tok else {
                    return Err(bad(&format!("expected a number, found {}", tok.describe())));
                };
                let Some(mag) = parse_int_lit(s) else {
                    return Err(bad(&format!("'{s}' is not an integer")));
                };
                let signed: i128 = if neg { -(mag as i128) } else { mag as i128 };
                let out_of_range = || bad(&format!("{signed} is out of range"));
                match t {
                    RuntimeType::U32 => {
                        ReflectValueBox::U32(u32::try_from(signed).map_err(|_| out_of_range())?)
                    }
                    RuntimeType::U64 => {
                        ReflectValueBox::U64(u64::try_from(signed).map_err(|_| out_of_range())?)
                    }
                    RuntimeType::I32 => {
                        ReflectValueBox::I32(i32::try_from(signed).map_err(|_| out_of_range())?)
                    }
                    _ => ReflectValueBox::I64(i64::try_from(signed).map_err(|_| out_of_range())?),
                }
            }
            RuntimeType::F32 | RuntimeType::F64 => {
                let (line, col) = (self.line, self.col);
                let neg = self.eat_sym('-')?;
                let tok = self.advance()?;
                let v = match &tok {
                    Tok::Num(s) => parse_int_lit(s)
                        .map(|v| v as f64)
                        .or_else(|| s.trim_end_matches(['f', 'F']).parse::<f64>().ok()),
                    Tok::Ident(s)
                        if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") =>
                    {
                        Some(f64::INFINITY)
                    }
                    Tok::Ident(s) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
                    _ => None,
                };
                let Some(v) = v else {
                    return Err(TextError {
                        line,
                        col,
                        msg: format!(
                            "invalid value for float field \"{fname}\": {}",
                            tok.describe()
                        ),
                    });
                };
                let v = if neg { -v } else { v };
                if matches!(t, RuntimeType::F32) {
                    ReflectValueBox::F32(v as f32)
                } else {
                    ReflectValueBox::F64(v)
                }
            }
        })
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self, fname: &str) -> Result<Vec<u8>, TextError> {
        let mut out = match self.advance()? {
            Tok::Str(b) => b,
            other => {
                return Err(TextError {
                    line: self.line,
                    col: self.col,
                    msg: format!(
                        "expected a quoted string for field \"{fname}\", found {}",
                        other.describe()
                    ),
                })
            }
        };
        while let Tok::Str(_) = self.tok {
            if let Tok::Str(b) = self.advance()? {
                out.extend_from_slice(&b);
            }
        }
        Ok(out)
    }
}

/// An unsigned integer literal: decimal, `0x` hex or leading-`0` octal.
fn parse_int_lit(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).ok();
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    None
}

/// Parses `input` as text format into a new `M`; also returns where each
/// top-level field was set. Required fields are checked (the error names
/// the missing field's path).
pub fn parse<M: MessageFull>(input: &str) -> Result<(M, Vec<FieldLoc>), TextError> {
    let mut m = M::new();
    let mut locs = Vec::new();
    let mut p = Parser::new(input)?;
    p.message_body(&mut m, &M::descriptor(), None, Some(&mut locs))?;
    if let Some(path) = missing_required(&m, "") {
        return Err(TextError {
            line: p.line,
            col: p.col,
            msg: format!("message is missing required field {path}; add it"),
        });
    }
    Ok((m, locs))
}

/// The path of the first required field that is not set, e.g. `mount[3].dst`.
pub fn missing_required(m: &dyn MessageDyn, prefix: &str) -> Option<String> {
    let d = m.descriptor_dyn();
    for f in d.fields() {
        let path = format!("{prefix}{}", f.name());
        if f.is_required() && !f.has_field(m) {
            return Some(path);
        }
        match f.runtime_field_type() {
            RuntimeFieldType::Singular(RuntimeType::Message(_)) if f.has_field(m) => {
                let sub = f.get_message(m);
                if let Some(p) = missing_required(&*sub, &format!("{path}.")) {
                    return Some(p);
                }
            }
            RuntimeFieldType::Repeated(RuntimeType::Message(_)) => {
                let rep = f.get_repeated(m);
                for i in 0..rep.len() {
                    if let ReflectValueRef::Message(sub) = rep.get(i) {
                        if let Some(p) = missing_required(&*sub, &format!("{path}[{i}].")) {
                            return Some(p);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::{Mode, NsJailConfig};

    fn p(s: &str) -> Result<NsJailConfig, TextError> {
        parse::<NsJailConfig>(s).map(|(m, _)| m)
    }

    #[test]
    fn cxx_text_format_features() {
        let c = p(r#"
            # comment
            name: "a" 'b' "\x41\101\n"   # adjacent literals, escapes
            mode: 2, hostname: "h";
            envar: ["A=1", "B=2"]
            envar: "C=3"
            mount: { dst: "/x" is_bind: True }
            mount < dst: "/y" rw: t >
            mount [{dst: "/z"}, {dst: "/w"}]
            exec_bin { path: "/bin/true" arg: "1" }
            nice_level: -5
            cgroup_mem_swap_max: -1
            rlimit_as: 0x10
            rlimit_cpu: 010
            log_level: 3
            mount { dst: "/c" src_content: "\000\377" }
            macvlan_vs_ma: "\u00e9"
        "#)
        .unwrap();
        assert_eq!(c.name(), "abAA\n");
        assert_eq!(c.mode(), Mode::RERUN);
        assert_eq!(c.envar, vec!["A=1", "B=2", "C=3"]);
        let dsts: Vec<_> = c.mount.iter().map(|m| m.dst().to_string()).collect();
        assert_eq!(dsts, vec!["/x", "/y", "/z", "/w", "/c"]);
        assert!(c.mount[0].is_bind());
        assert!(c.mount[1].rw());
        assert_eq!(c.exec_bin.path(), "/bin/true");
        assert_eq!(c.nice_level(), -5);
        assert_eq!(c.rlimit_as(), 16);
        assert_eq!(c.rlimit_cpu(), 8);
        assert_eq!(c.mount[4].src_content(), &[0u8, 255]);
        assert_eq!(c.macvlan_vs_ma(), "é");
    }

    #[test]
    fn errors_have_positions() {
        let e = p("name: \"x\"\n  bogus: 1\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        assert!(e.msg.contains("bogus"), "{e}");
        let e = p("mode: SOMETIMES").unwrap_err();
        assert!(e.msg.contains("ONCE"), "{e}");
        let e = p("time_limit: -1").unwrap_err();
        assert!(e.msg.contains("out of range"), "{e}");
        let e = p("hostname: \"a\" hostname: \"b\"").unwrap_err();
        assert!(e.msg.contains("multiple times"), "{e}");
        let e = p("mount { src: \"/a\" }").unwrap_err();
        assert!(e.msg.contains("mount[0].dst"), "{e}");
        let e = p("exec_bin { arg: \"x\" }").unwrap_err();
        assert!(e.msg.contains("exec_bin.path"), "{e}");
        assert!(p("mount { dst: \"/a\"").is_err());
        assert!(p("name: \"abc").is_err());
        assert!(p("name: \"\\q\"").is_err());
        assert!(p("daemon: yes").is_err());
        assert!(p("hostname \"x\"").is_err());
        assert!(p("name: \"\\xff\"").is_err());
        let deep = "exec_bin {".repeat(200);
        assert!(p(&deep).is_err());
    }

    #[test]
    fn deep_nesting_of_real_messages_is_limited() {
        // UserNet.pasta is two levels; that is fine.
        let c = p("user_net { pasta { nat: false } rule4 { dport: 80 } }").unwrap();
        assert!(!c.user_net.pasta.nat());
        assert_eq!(c.user_net.rule4[0].dport(), 80);
    }
}
