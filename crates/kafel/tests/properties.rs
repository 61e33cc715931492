//! Property tests: random policies and random `seccomp_data`; the compiled
//! program's verdict (run in the interpreter) must equal the direct evaluation of
//! the parsed policy. Also: no input makes the compiler panic.

mod common;
use common::*;
use kafel::interp::{run, SeccompData};
use kafel::*;
use proptest::prelude::*;

/// Syscalls the generator uses: (spelling in the policy, argument names usable).
const SYSCALLS: &[(&str, &[&str])] = &[
    ("read", &["fd", "buf", "count"]),
    ("write", &["fd", "buf", "count"]),
    ("mmap", &["addr", "len", "prot", "flags", "fd", "off"]),
    ("fcntl", &["fd", "cmd", "arg"]),
    ("openat", &["dfd", "filename", "flags", "mode"]),
    ("getpid", &[]),
    ("close", &["fd"]),
    ("umount2", &["name", "flags"]),
    ("SYSCALL[1000]", &[]),
    ("SYSCALL[0xffffffff]", &[]),
];

/// The same for the 32-bit architectures (i386, arm), where `mmap` has no named
/// arguments (it is the old struct-pointer `old_mmap`).
const SYSCALLS_32: &[(&str, &[&str])] = &[
    ("read", &["fd", "buf", "count"]),
    ("write", &["fd", "buf", "count"]),
    ("mprotect", &["start", "len", "prot"]),
    ("mmap", &[]),
    ("fcntl", &["fd", "cmd", "arg"]),
    ("openat", &["dfd", "filename", "flags", "mode"]),
    ("getpid", &[]),
    ("close", &["fd"]),
    ("umount2", &["name", "flags"]),
    ("SYSCALL[1000]", &[]),
    ("SYSCALL[0xffffffff]", &[]),
];

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("0xff".to_string()),
        Just("0xffffffff".to_string()),
        Just("0x100000000".to_string()),
        Just("0xffffffffffffffff".to_string()),
        Just("-1".to_string()),
        Just("0b101".to_string()),
        Just("017".to_string()),
        (0u64..8).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("{n:#x}")),
    ]
}

fn value(args: Vec<&'static str>) -> impl Strategy<Value = String> {
    let leaf = if args.is_empty() {
        number().boxed()
    } else {
        prop_oneof![3 => proptest::sample::select(args).prop_map(str::to_string), 2 => number()]
            .boxed()
    };
    leaf.prop_recursive(2, 6, 2, |inner| {
        (inner.clone(), prop_oneof![Just("&"), Just("|")], inner)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
}

fn condition(args: Vec<&'static str>) -> impl Strategy<Value = String> {
    let cmp = (
        value(args.clone()),
        prop_oneof![
            Just("=="),
            Just("!="),
            Just("<"),
            Just("<="),
            Just(">"),
            Just(">=")
        ],
        value(args),
    )
        .prop_map(|(a, op, b)| format!("{a} {op} {b}"));
    cmp.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("!({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}), ({b})")),
        ]
    })
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ALLOW".to_string()),
        Just("LOG".to_string()),
        Just("KILL".to_string()),
        Just("DENY".to_string()),
        Just("KILL_PROCESS".to_string()),
        Just("USER_NOTIF".to_string()),
        // C Kafel's range: up to 65535 (above 4095 with a warning).
        (0u32..65536).prop_map(|n| format!("ERRNO({n})")),
        (0u32..65536).prop_map(|n| format!("TRAP({n})")),
        (0u32..65536).prop_map(|n| format!("TRACE({n})")),
    ]
}

type Table = &'static [(&'static str, &'static [&'static str])];

/// An optional `ON` guard (C Kafel's architecture names, any case).
fn guard() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just(" ON x86_64".to_string()),
        1 => Just(" ON aarch64".to_string()),
        1 => Just(" ON { i386, arm }".to_string()),
        1 => Just(" ON { AMD64, arm64, mips }".to_string()),
        1 => Just(" ON riscv64".to_string()),
    ]
}

fn rule(table: Table) -> impl Strategy<Value = String> {
    (0..table.len(), any::<bool>(), any::<bool>(), guard()).prop_flat_map(
        move |(i, with_cond, custom, on)| {
            let (name, named) = table[i];
            let (head, args): (String, Vec<&'static str>) = if custom {
                (format!("{name}(a, b, c){on}"), vec!["a", "b", "c"])
            } else {
                (format!("{name}{on}"), named.to_vec())
            };
            if with_cond {
                condition(args)
                    .prop_map(move |c| format!("{head} {{ {c} }}"))
                    .boxed()
            } else {
                Just(head).boxed()
            }
        },
    )
}

fn block(table: Table) -> impl Strategy<Value = String> {
    (action(), proptest::collection::vec(rule(table), 0..5))
        .prop_map(|(a, rules)| format!("{a} {{ {} }}", rules.join(", ")))
}

fn policy() -> impl Strategy<Value = String> {
    policy_with(SYSCALLS)
}

fn policy_with(table: Table) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(block(table), 0..3),
        proptest::collection::vec(block(table), 1..5),
        proptest::option::of(action()),
        any::<bool>(),
    )
        .prop_map(|(used, main, default, x32)| {
            let mut text = String::new();
            if x32 {
                text.push_str("#pragma x32\n");
            }
            let mut names = Vec::new();
            for (i, b) in used.iter().enumerate() {
                text.push_str(&format!("POLICY p{i} {{ {b} }}\n"));
                names.push(format!("USE p{i}"));
            }
            let mut stmts = main;
            for (i, u) in names.into_iter().enumerate() {
                let at = (i * 2).min(stmts.len());
                stmts.insert(at, u);
            }
            text.push_str(&stmts.join(",\n"));
            if let Some(d) = default {
                text.push_str(&format!("\nDEFAULT {d}"));
            }
            text
        })
}

fn arg_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(0xff),
        Just(0xffff_ffff),
        Just(0x1_0000_0000),
        Just(0x1_0000_0001),
        Just(u64::MAX),
        0u64..8,
        any::<u64>(),
    ]
}

fn seccomp_data(arch: Arch) -> impl Strategy<Value = SeccompData> {
    let nrs: Vec<u32> = [
        "read", "write", "mmap", "mprotect", "fcntl", "openat", "getpid", "close", "umount2",
    ]
    .iter()
    .map(|n| syscall_number(arch, n).unwrap())
    // x32 numbers (0x40000000 | n), which x86_64 gives the foreign-ABI verdict.
    .chain([
        1000,
        0xffff_ffff,
        999,
        1001,
        0x4000_0027,
        0x4000_0000,
        0x3fff_ffff,
    ])
    .collect();
    (
        prop_oneof![8 => proptest::sample::select(nrs), 1 => any::<u32>()],
        proptest::array::uniform6(arg_value()),
        prop_oneof![15 => Just(arch.audit_arch()), 1 => any::<u32>()],
    )
        .prop_map(|(nr, args, audit)| SeccompData {
            nr: nr as i32,
            arch: audit,
            instruction_pointer: 0,
            args,
        })
}

proptest! {
    // Failing cases are saved next to this file (tests/<name>.proptest-regressions)
    // and replayed first: the default looks for a lib.rs above tests/ and
    // warns on every case when it finds none.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn compiled_verdict_equals_direct_evaluation(
        text in policy(),
        samples in proptest::collection::vec(seccomp_data(Arch::X86_64), 32),
    ) {
        let o = common::opts(Arch::X86_64);
        let prog = compile(&text, &o).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        assert_loadable(&prog.filter);
        let parsed = parse(&text, &o).unwrap();
        for d in &samples {
            let got = run(&prog.filter, d).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, parsed.evaluate(d), "policy:\n{}\ndata: {:?}", text, d);
        }
    }

    #[test]
    fn aarch64_compiled_verdict_equals_direct_evaluation(
        text in policy(),
        samples in proptest::collection::vec(seccomp_data(Arch::Aarch64), 16),
    ) {
        let o = common::opts(Arch::Aarch64);
        let prog = compile(&text, &o).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let parsed = parse(&text, &o).unwrap();
        for d in &samples {
            prop_assert_eq!(run(&prog.filter, d).unwrap(), parsed.evaluate(d));
        }
    }

    #[test]
    fn i386_compiled_verdict_equals_direct_evaluation(
        text in policy_with(SYSCALLS_32),
        samples in proptest::collection::vec(seccomp_data(Arch::X86), 16),
    ) {
        let o = common::opts(Arch::X86);
        let prog = compile(&text, &o).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        assert_loadable(&prog.filter);
        let parsed = parse(&text, &o).unwrap();
        for d in &samples {
            prop_assert_eq!(run(&prog.filter, d).unwrap(), parsed.evaluate(d), "policy:\n{}\ndata: {:?}", text, d);
        }
    }

    #[test]
    fn arm_compiled_verdict_equals_direct_evaluation(
        text in policy_with(SYSCALLS_32),
        samples in proptest::collection::vec(seccomp_data(Arch::Arm), 16),
    ) {
        let o = common::opts(Arch::Arm);
        let prog = compile(&text, &o).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        assert_loadable(&prog.filter);
        let parsed = parse(&text, &o).unwrap();
        for d in &samples {
            prop_assert_eq!(run(&prog.filter, d).unwrap(), parsed.evaluate(d), "policy:\n{}\ndata: {:?}", text, d);
        }
    }

    #[test]
    fn arbitrary_token_soup_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just("ALLOW"), Just("KILL"), Just("ERRNO(1)"), Just("POLICY"), Just("USE"), Just("DEFAULT"),
            Just("{"), Just("}"), Just("("), Just(")"), Just(","), Just("["), Just("]"), Just("SYSCALL"),
            Just("read"), Just("fd"), Just("p"), Just("=="), Just("<"), Just("&"), Just("|"), Just("&&"),
            Just("||"), Just("!"), Just("1"), Just("0x"), Just("09"), Just("#define"), Just("#include"),
            Just("/*"), Just("*/"), Just("//"), Just("\n"), Just("\"f\""), Just(";"), Just("-"), Just("é"),
            Just("ON"), Just("x86_64"), Just("arm64"), Just("#pragma"), Just("x32"), Just("ERRNO(65535)"),
        ], 0..40),
    ) {
        let text = parts.join(" ");
        let _ = compile(&text, &common::opts(Arch::X86_64));
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in ".{0,200}") {
        let _ = compile(&text, &common::opts(Arch::X86_64));
    }
}
