//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kafel::interp::{run_counted, SeccompData};
use kafel::{compile, parse, Arch, CompileOptions, Program};

pub const X86: Arch = Arch::X86_64;

pub fn opts(arch: Arch) -> CompileOptions {
    CompileOptions {
        arch,
        include_paths: Vec::new(),
    }
}

pub fn build(policy: &str) -> Program {
    compile(policy, &opts(X86)).unwrap_or_else(|e| panic!("policy should compile: {e}\n{policy}"))
}

pub fn err(policy: &str) -> String {
    match compile(policy, &opts(X86)) {
        Ok(_) => panic!("policy should be rejected:\n{policy}"),
        Err(e) => e.to_string(),
    }
}

pub fn data(arch: Arch, nr: u32, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr: nr as i32,
        arch: arch.audit_arch(),
        instruction_pointer: 0x1234_5678_9abc,
        args,
    }
}

pub fn nr(name: &str) -> u32 {
    kafel::syscall_number(X86, name).unwrap_or_else(|| panic!("no syscall {name}"))
}

/// Verdict of the compiled program for syscall `name` with `args`, checked
/// against the direct evaluation of the parsed policy.
pub fn verdict_args(policy: &str, name: &str, args: [u64; 6]) -> u32 {
    verdict_nr(policy, nr(name), args)
}

pub fn verdict(policy: &str, name: &str) -> u32 {
    verdict_args(policy, name, [0; 6])
}

pub fn verdict_nr(policy: &str, number: u32, args: [u64; 6]) -> u32 {
    let prog = build(policy);
    let d = data(X86, number, args);
    let got = run_counted(&prog.filter, &d).expect("program runs").ret;
    let parsed = parse(policy, &opts(X86)).expect("parses");
    assert_eq!(
        got,
        parsed.evaluate(&d),
        "compiled and direct verdicts differ"
    );
    got
}
