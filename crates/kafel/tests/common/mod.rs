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

/// Static checks the kernel's filter checker makes: length, every jump inside the
/// program, last instruction a return, loads aligned inside seccomp_data.
pub fn assert_loadable(prog: &[kafel::SockFilter]) {
    assert!(
        !prog.is_empty() && prog.len() <= 4096,
        "length {}",
        prog.len()
    );
    for (pc, ins) in prog.iter().enumerate() {
        let class = ins.code & 7;
        if class == 5 {
            if ins.code & 0xf0 == 0 {
                assert!(
                    pc + 1 + (ins.k as usize) < prog.len(),
                    "ja at {pc} out of range"
                );
            } else {
                assert!(pc + 1 + usize::from(ins.jt) < prog.len(), "jt at {pc}");
                assert!(pc + 1 + usize::from(ins.jf) < prog.len(), "jf at {pc}");
            }
        }
        if ins.code == 0x20 {
            assert!(ins.k % 4 == 0 && ins.k < 64, "load at {pc}");
        }
    }
    assert_eq!(prog.last().unwrap().code & 7, 6, "ends with ret");
}

/// The shape of a policy's dispatch: its number of distinct ranges (adjacent
/// numbers with the same unconditional verdict merge; a number with argument
/// checks is its own range), and, on x86_64 without `#pragma x32`, where the last
/// range starts: that range carries the x32 guard, one more comparison for its
/// numbers only.
pub struct Dispatch {
    pub ranges: usize,
    pub guarded_from: Option<u64>,
}

pub fn dispatch_shape(policy: &kafel::Policy) -> Dispatch {
    use std::collections::BTreeMap;
    #[derive(PartialEq)]
    enum T {
        Action(u32),
        Checks(u32),
    }
    let mut per_nr: BTreeMap<u32, T> = BTreeMap::new();
    let mut done = std::collections::HashSet::new();
    for r in &policy.rules {
        if done.contains(&r.nr) {
            continue;
        }
        match &r.cond {
            None => {
                done.insert(r.nr);
                per_nr.entry(r.nr).or_insert(T::Action(r.action));
            }
            Some(_) => {
                per_nr.insert(r.nr, T::Checks(r.nr));
            }
        }
    }
    // On x86_64 (without `#pragma x32`) rules for x32 numbers are dropped.
    let foreign = policy.arch == kafel::Arch::X86_64 && !policy.x32_rules;
    let end: u64 = if foreign {
        u64::from(kafel::X32_SYSCALL_BIT)
    } else {
        1 << 32
    };
    let mut ranges: Vec<(u64, T)> = Vec::new();
    let mut push = |start: u64, t: T| {
        if ranges.last().map(|r| &r.1) != Some(&t) {
            ranges.push((start, t));
        }
    };
    let mut next = 0u64;
    for (nr, t) in per_nr {
        if u64::from(nr) >= end {
            break;
        }
        if u64::from(nr) > next {
            push(next, T::Action(policy.default_action));
        }
        push(u64::from(nr), t);
        next = u64::from(nr) + 1;
    }
    if next < end {
        push(next, T::Action(policy.default_action));
    } else if foreign {
        // A rule for the number right below the x32 bit: the x32 numbers are a
        // KILL range of their own, not a guard.
        push(end, T::Action(kafel::RET_KILL_THREAD));
    }
    let guarded_from = ranges
        .last()
        .filter(|r| foreign && r.0 < end && r.1 != T::Action(kafel::RET_KILL_THREAD))
        .map(|r| r.0);
    Dispatch {
        ranges: ranges.len(),
        guarded_from,
    }
}

pub fn ceil_log2(n: usize) -> usize {
    (usize::BITS - (n.max(1) - 1).leading_zeros()) as usize
}

/// A 150-syscall allow-list: every other x86_64 syscall (~300 number ranges).
pub fn allow_list_150() -> String {
    let names: Vec<&str> = kafel::syscalls(X86)
        .step_by(2)
        .take(150)
        .map(|(n, _)| n.trim_start_matches('_'))
        .collect();
    format!("ALLOW {{ {} }} DEFAULT KILL", names.join(", "))
}

/// A policy of `n` rules, each with an argument check, on distinct syscalls.
pub fn rules_with_args(n: usize) -> String {
    let mut rules = Vec::new();
    for (i, (name, _)) in kafel::syscalls(X86).take(n).enumerate() {
        // Kafel identifiers cannot start with '_' ("_sysctl" is also "sysctl").
        let name = name.trim_start_matches('_');
        let args = kafel::syscall_arg_names(X86, name).unwrap_or_default();
        match args.first().filter(|a| !a.starts_with('_')) {
            Some(a) => rules.push(format!("{name} {{ {a} == {i} || {a} > 0x100000000 }}")),
            None => rules.push(format!("{name}(x) {{ x != {i} }}")),
        }
    }
    format!("ALLOW {{ {} }} DEFAULT ERRNO(1)", rules.join(",\n"))
}
