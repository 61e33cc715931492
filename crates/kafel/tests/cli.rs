//! The `kafel-compile` front end.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafel-compile"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kafel-compile runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn prints_one_instruction_per_line() {
    let policy = "ALLOW { read, write { fd == 1 } } DEFAULT KILL";
    let (code, out, err) = run(&["--arch", "x86_64", "-"], policy);
    assert_eq!((code, err.as_str()), (0, ""));
    let opts = kafel::CompileOptions {
        arch: kafel::Arch::X86_64,
        include_paths: vec![],
    };
    let prog = kafel::compile(policy, &opts).unwrap();
    let want: String = prog
        .filter
        .iter()
        .map(|i| format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn reads_a_file_and_honours_arch() {
    let path = format!(
        "{}/tests/fixtures/tooljet-python-full.policy",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, _) = run(&["--arch", "aarch64", &path], "");
    assert_eq!(code, 0);
    let first_two: Vec<&str> = out.lines().take(2).collect();
    assert_eq!(first_two[0], "32 0 0 4");
    assert!(first_two[1].ends_with(&kafel::Arch::Aarch64.audit_arch().to_string()));
}

#[test]
fn bad_policy_exits_1_with_kafel_message() {
    let (code, out, err) = run(&[], "ALLOW { bogus_syscall }");
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(err, "1:9: Undefined identifier 'bogus_syscall'\n");
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(run(&["--arch", "mips"], "").0, 2);
    assert_eq!(run(&["/nonexistent/policy"], "").0, 2);
}

#[test]
fn compiles_for_i386_and_arm() {
    for (name, arch) in [("i386", kafel::Arch::X86), ("arm", kafel::Arch::Arm)] {
        let policy = "ALLOW { read, write { fd == 1 } } DEFAULT KILL";
        let (code, out, err) = run(&["--arch", name, "-"], policy);
        assert_eq!((code, err.as_str()), (0, ""), "{name}");
        let opts = kafel::CompileOptions {
            arch,
            include_paths: vec![],
        };
        let want: String = kafel::compile(policy, &opts)
            .unwrap()
            .filter
            .iter()
            .map(|i| format!("{} {} {} {}\n", i.code, i.jt, i.jf, i.k))
            .collect();
        assert_eq!(out, want, "{name}");
        let second = out.lines().nth(1).unwrap();
        assert!(
            second.ends_with(&format!(" {}", arch.audit_arch())),
            "{name}: {second}"
        );
    }
    let (code, _, err) = run(&["--arch", "sparc", "-"], "");
    assert_eq!(code, 2);
    assert!(err.contains("i386 or arm"), "{err}");
}
