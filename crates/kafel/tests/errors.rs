//! Every error path, with the exact `LINE:COL: message` text.

mod common;
use common::*;

#[track_caller]
fn check(policy: &str, want: &str) {
    assert_eq!(err(policy), want, "policy:\n{policy}");
}

#[test]
fn unknown_syscall_is_undefined_identifier() {
    check(
        "ALLOW { bogus_syscall }",
        "1:9: Undefined identifier 'bogus_syscall'",
    );
    check(
        "ALLOW {\n  read,\n\tbogus }",
        "3:2: Undefined identifier 'bogus'",
    );
}

#[test]
fn unknown_syscall_in_unused_policy_is_still_an_error() {
    check(
        "POLICY p { ALLOW { nope } }\nALLOW { read }",
        "1:20: Undefined identifier 'nope'",
    );
}

#[test]
fn unknown_argument_is_undefined_identifier() {
    check(
        "ALLOW { write { fdx == 1 } }",
        "1:17: Undefined identifier 'fdx'",
    );
    check(
        "ALLOW { SYSCALL[5] { a == 1 } }",
        "1:22: Undefined identifier 'a'",
    );
    check(
        "ALLOW { read(a) { fd == 1 } }",
        "1:19: Undefined identifier 'fd'",
    );
    check(
        "ALLOW { read() { a == 1 } }",
        "1:18: Undefined identifier 'a'",
    );
}

#[test]
fn bad_numbers() {
    check(
        "ALLOW { write { fd == 18446744073709551616 } }",
        "1:23: number '18446744073709551616' out of range",
    );
    check(
        "ALLOW { write { fd == 0x10000000000000000 } }",
        "1:23: number '0x10000000000000000' out of range",
    );
    check(
        "ALLOW { write { fd == 09 } }",
        "1:23: number '09' is not a valid octal number (a leading 0 means octal)",
    );
    check("ALLOW { write { fd == - 1 } }", "1:23: unexpected char '-'");
}

#[test]
fn bad_action_arguments() {
    // C Kafel's range: up to 65535 (4096.. compiles, with a warning).
    check(
        "ERRNO(65536) { read }",
        "1:7: Errno value 65536 out of range (0-65535)",
    );
    check(
        "ERRNO(-1) { read }",
        "1:7: Errno value 18446744073709551615 out of range (0-65535)",
    );
    check(
        "TRAP(65536) { read }",
        "1:6: Trap value 65536 out of range (0-65535)",
    );
    check(
        "TRACE(0x10000) { read }",
        "1:7: Trace value 65536 out of range (0-65535)",
    );
    check(
        "ERRNO { read }",
        "1:7: syntax error, unexpected '{', expecting '('",
    );
    check(
        "ERRNO(x) { read }",
        "1:7: syntax error, unexpected IDENTIFIER, expecting NUMBER",
    );
    check(
        "ERRNO(1 { read }",
        "1:9: syntax error, unexpected '{', expecting ')'",
    );
}

#[test]
fn policy_errors() {
    check("USE nope DEFAULT KILL", "1:5: Undefined policy 'nope'");
    check(
        "POLICY a { USE b }\nPOLICY b { ALLOW { read } }",
        "1:16: Undefined policy 'b'",
    );
    // A policy cannot use itself (no cycles are possible).
    check("POLICY a { USE a }", "1:16: Undefined policy 'a'");
    check(
        "POLICY a { ALLOW { read } }\nPOLICY a { ALLOW { write } }",
        "2:1: Redefinition of policy 'a'",
    );
    check(
        "POLICY { }",
        "1:8: syntax error, unexpected '{', expecting IDENTIFIER",
    );
}

#[test]
fn default_errors() {
    check(
        "ALLOW { read }\nDEFAULT KILL\nDEFAULT ALLOW",
        "3:1: Redefinition of default action",
    );
    check("DEFAULT", "1:1: syntax error, unexpected end of file");
    check(
        "POLICY a { DEFAULT KILL, DEFAULT ALLOW }",
        "1:24: syntax error, unexpected ',', expecting '}' or ','",
    );
}

#[test]
fn comment_errors() {
    check(
        "ALLOW { read }\n  /* never closed\n",
        "2:3: unterminated comment",
    );
}

#[test]
fn constant_errors() {
    check(
        "#define A 1\n#define A 2\nALLOW { read }",
        "2:1: Redefinition of constant 'A' with different value (was: 1 is: 2)",
    );
    check(
        "#define A\nALLOW { read }",
        "2:1: syntax error, unexpected ALLOW, expecting NUMBER",
    );
    check(
        "#defin A 1",
        "1:2: syntax error, unexpected IDENTIFIER, expecting DEFINE",
    );
}

#[test]
fn argument_list_errors() {
    check(
        "ALLOW { read(a, a) { a == 1 } }",
        "1:17: Redefinition of argument 'a'",
    );
    check(
        "ALLOW { read(a, b, c, d, e, f, g) { a == 1 } }",
        "1:32: Too many arguments defined for syscall",
    );
}

#[test]
fn syntax_errors() {
    check("", "1:1: syntax error, unexpected end of file");
    check(
        "// only a comment\n",
        "1:1: syntax error, unexpected end of file",
    );
    check(
        "ALLOW { read write }",
        "1:14: syntax error, unexpected IDENTIFIER, expecting '}' or ','",
    );
    check(
        "ALLOW { read, }",
        "1:15: syntax error, unexpected '}', expecting IDENTIFIER or SYSCALL",
    );
    check(
        "ALLOW read",
        "1:7: syntax error, unexpected IDENTIFIER, expecting '{'",
    );
    check(
        "ALLOW { read { fd } }",
        "1:19: syntax error, unexpected '}'",
    );
    check(
        "ALLOW { read { fd == } }",
        "1:22: syntax error, unexpected '}'",
    );
    check(
        "ALLOW { read { (fd == 1) == 1 } }",
        "1:26: syntax error, unexpected EQ",
    );
    check("ALLOW { read { fd = 1 } }", "1:19: unexpected char '='");
    check(
        "ALLOW { read }, ",
        "1:15: syntax error, unexpected end of file",
    );
    check("read", "1:1: syntax error, unexpected IDENTIFIER");
    check(
        "ALLOW { SYSCALL 5 }",
        "1:17: syntax error, unexpected NUMBER, expecting '['",
    );
    check("ALLOW { read } }", "1:16: syntax error, unexpected '}'");
    check(
        "ALLOW { read { fd == 1 }",
        "1:24: syntax error, unexpected end of file, expecting '}' or ','",
    );
    check("ALLOW { read } @", "1:16: unexpected char '@'");
}

#[test]
fn expression_depth_limit() {
    let deep = format!("ALLOW {{ read {{ {}fd == 1 }} }}", "!".repeat(250));
    let e = err(&deep);
    assert!(e.ends_with("Max expression depth (200) exceeded"), "{e}");
    let chain = vec!["fd == 1"; 300].join(" || ");
    let e = err(&format!("ALLOW {{ read {{ {chain} }} }}"));
    assert_eq!(e, "1:16: Max expression depth (200) exceeded");
    let parens = format!(
        "ALLOW {{ read {{ {}fd == 1{} }} }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let e = err(&parens);
    assert!(e.ends_with("Max expression depth (200) exceeded"), "{e}");
    // 199 levels are fine.
    let ok = vec!["fd == 1"; 150].join(" || ");
    build(&format!("ALLOW {{ read {{ {ok} }} }}"));
}

#[test]
fn program_too_long_is_a_clear_error() {
    // Each rule needs several instructions; 1500 distinct argument checks exceed 4096.
    let rules: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                "SYSCALL[{}](a, b) {{ a == {i} && b == {} }}",
                1000 + 2 * i,
                i + 7
            )
        })
        .collect();
    let e = err(&format!("ALLOW {{ {} }}", rules.join(", ")));
    assert!(e.starts_with("the policy compiles to "), "{e}");
    assert!(e.contains("more than the kernel's limit of 4096"), "{e}");
}

#[test]
fn error_fields_are_one_based() {
    let e = kafel::compile("\n\n   ALLOW { nope }", &opts(X86)).unwrap_err();
    assert_eq!((e.line, e.col, e.file.as_deref()), (3, 12, None));
    assert_eq!(e.message, "Undefined identifier 'nope'");
}
