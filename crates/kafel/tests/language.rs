//! One test per language construct: compile, run in the interpreter, check the verdict.

mod common;
use common::*;
use kafel::interp::run;
use kafel::*;

#[test]
fn default_is_kill_when_absent() {
    assert_eq!(verdict("ALLOW { read }", "write"), RET_KILL_THREAD);
    assert_eq!(verdict("ALLOW { read }", "read"), RET_ALLOW);
}

#[test]
fn default_action_applies_to_unmatched() {
    let p = "ALLOW { read } DEFAULT ERRNO(38)";
    assert_eq!(verdict(p, "write"), RET_ERRNO | 38);
}

#[test]
fn every_action_maps_to_its_seccomp_value() {
    let cases = [
        ("ALLOW", RET_ALLOW),
        ("LOG", RET_LOG),
        ("KILL", RET_KILL_THREAD),
        ("KILL_THREAD", RET_KILL_THREAD),
        ("DENY", RET_KILL_THREAD),
        ("KILL_PROCESS", RET_KILL_PROCESS),
        ("USER_NOTIF", RET_USER_NOTIF),
        ("ERRNO(1)", RET_ERRNO | 1),
        ("ERRNO(4095)", RET_ERRNO | 4095),
        ("TRAP(7)", RET_TRAP | 7),
        ("TRAP(65535)", RET_TRAP | 65535),
        ("TRACE(0x10)", RET_TRACE | 0x10),
    ];
    for (action, value) in cases {
        let p = format!("{action} {{ getppid }} DEFAULT ALLOW");
        assert_eq!(verdict(&p, "getppid"), value, "{action}");
        assert_eq!(verdict(&p, "getpid"), RET_ALLOW, "{action}");
    }
}

#[test]
fn foreign_arch_is_killed() {
    let prog = build("ALLOW { read } DEFAULT ALLOW");
    let mut d = data(Arch::X86_64, 0, [0; 6]);
    d.arch = Arch::Aarch64.audit_arch();
    assert_eq!(run(&prog.filter, &d), Ok(RET_KILL_THREAD));
    d.arch = 0x4000_0003; // i386
    assert_eq!(run(&prog.filter, &d), Ok(RET_KILL_THREAD));
}

#[test]
fn aarch64_uses_its_own_numbers_and_arch() {
    let o = common::opts(Arch::Aarch64);
    let prog = compile("ALLOW { write, umount2 } DEFAULT KILL", &o).unwrap();
    let write = syscall_number(Arch::Aarch64, "write").unwrap();
    assert_eq!(write, 64);
    assert_eq!(
        run(&prog.filter, &data(Arch::Aarch64, 64, [0; 6])),
        Ok(RET_ALLOW)
    );
    assert_eq!(
        run(&prog.filter, &data(Arch::Aarch64, 39, [0; 6])),
        Ok(RET_ALLOW)
    );
    assert_eq!(
        run(&prog.filter, &data(Arch::Aarch64, 1, [0; 6])),
        Ok(RET_KILL_THREAD)
    );
    assert_eq!(
        run(&prog.filter, &data(Arch::X86_64, 64, [0; 6])),
        Ok(RET_KILL_THREAD)
    );
}

#[test]
fn comments_are_ignored() {
    let p = "// line comment\nALLOW { /* inline */ read, // trailing\n /* multi\nline */ write }";
    assert_eq!(verdict(p, "write"), RET_ALLOW);
    assert_eq!(verdict(p, "open"), RET_KILL_THREAD);
}

#[test]
fn defines_work_as_numbers_and_syscalls() {
    let p = "#define MYFD 3\n#define mysys 1000\n#define E 13\nALLOW { write { fd == MYFD } }\nERRNO(E) { mysys } DEFAULT KILL";
    assert_eq!(verdict_args(p, "write", [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(p, "write", [4, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(verdict_nr(p, 1000, [0; 6]), RET_ERRNO | 13);
    // The same value may be defined twice.
    build("#define A 1\n#define A 1\nALLOW { read { fd == A } }");
    // `# define` with a space is the same statement in Kafel's grammar.
    build("# define A 1\nALLOW { read { fd == A } }");
}

#[test]
fn defined_constant_shadows_argument_name() {
    // Kafel resolves constants first: `fd` here is the number 5.
    let p = "#define fd 5\nALLOW { write { fd == 5 } }";
    assert_eq!(verdict_args(p, "write", [0; 6]), RET_ALLOW);
}

#[test]
fn numbers_in_every_base() {
    for lit in ["10", "0xa", "0XA", "012", "0b1010"] {
        let p = format!("ALLOW {{ write {{ fd == {lit} }} }}");
        if lit == "0XA" {
            assert!(
                compile(&p, &common::opts(X86)).is_err(),
                "0X is not a hex prefix"
            );
            continue;
        }
        assert_eq!(
            verdict_args(&p, "write", [10, 0, 0, 0, 0, 0]),
            RET_ALLOW,
            "{lit}"
        );
        assert_eq!(
            verdict_args(&p, "write", [11, 0, 0, 0, 0, 0]),
            RET_KILL_THREAD,
            "{lit}"
        );
    }
    // Negative decimals wrap to 64 bits, like strtoull.
    let p = "ALLOW { mmap { fd == -1 } }";
    assert_eq!(
        verdict_args(p, "mmap", [0, 0, 0, 0, u64::MAX, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_args(p, "mmap", [0, 0, 0, 0, 0xffff_ffff, 0]),
        RET_KILL_THREAD
    );
    let p = "ALLOW { mmap { off == 18446744073709551615 } }";
    assert_eq!(
        verdict_args(p, "mmap", [0, 0, 0, 0, 0, u64::MAX]),
        RET_ALLOW
    );
}

#[test]
fn syscall_by_number() {
    let p = "ERRNO(5) { SYSCALL[1000], SYSCALL[0x3e9], SYSCALL[-1] } DEFAULT ALLOW";
    assert_eq!(verdict_nr(p, 1000, [0; 6]), RET_ERRNO | 5);
    assert_eq!(verdict_nr(p, 1001, [0; 6]), RET_ERRNO | 5);
    assert_eq!(verdict_nr(p, 1002, [0; 6]), RET_ALLOW);
    // On x86_64 numbers from the x32 bit up (-1 included) get the foreign-ABI
    // verdict, unless `#pragma x32` lets the rules decide them.
    assert_eq!(verdict_nr(p, u32::MAX, [0; 6]), RET_KILL_THREAD);
    let p = format!("#pragma x32\n{p}");
    assert_eq!(verdict_nr(&p, u32::MAX, [0; 6]), RET_ERRNO | 5);
    assert_eq!(verdict_nr(&p, u32::MAX - 1, [0; 6]), RET_ALLOW);
}

#[test]
fn named_arguments_of_well_known_syscalls() {
    let p =
        "ALLOW { write { fd == 1 }, mmap { prot & 4 == 0 }, openat { flags & 0x40 } } DEFAULT KILL";
    let p = p.replace("flags & 0x40 }", "(flags & 0x40) != 0 }");
    assert_eq!(verdict_args(&p, "write", [1, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(&p, "write", [2, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(verdict_args(&p, "mmap", [0, 0, 3, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(&p, "mmap", [0, 0, 7, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(verdict_args(&p, "openat", [0, 0, 0x41, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(&p, "openat", [0, 0, 0x01, 0, 0, 0]),
        RET_KILL_THREAD
    );
}

#[test]
fn custom_argument_names() {
    let p = "ALLOW { read(f, buff, c) { f == 0 && c < 10 }, SYSCALL[1000](a, b) { b == 2 } }";
    assert_eq!(verdict_args(p, "read", [0, 0, 9, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(p, "read", [0, 0, 10, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(verdict_nr(p, 1000, [0, 2, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict_nr(p, 1000, [0, 3, 0, 0, 0, 0]), RET_KILL_THREAD);
    // Custom names are 8 bytes wide: the high half counts.
    assert_eq!(
        verdict_args(p, "read", [1 << 32, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
}

#[test]
fn comparisons_all_operators() {
    for (op, lo, eq, hi) in [
        ("==", false, true, false),
        ("!=", true, false, true),
        ("<", true, false, false),
        ("<=", true, true, false),
        (">", false, false, true),
        (">=", false, true, true),
    ] {
        let p = format!("ALLOW {{ mmap {{ len {op} 0x100000000 }} }}");
        let v = |len: u64| verdict_args(&p, "mmap", [0, len, 0, 0, 0, 0]) == RET_ALLOW;
        assert_eq!(v(0xffff_ffff), lo, "{op} below");
        assert_eq!(v(0x1_0000_0000), eq, "{op} equal");
        assert_eq!(v(0x1_0000_0001), hi, "{op} above");
        assert_eq!(v(0x2_0000_0000), hi, "{op} high word above");
        assert_eq!(v(5), lo, "{op} small");
    }
}

#[test]
fn comparisons_between_arguments() {
    let p = "ALLOW { mmap { addr < len && (prot | flags) == (fd & off) } }";
    assert_eq!(verdict_args(p, "mmap", [1, 2, 1, 2, 7, 3]), RET_ALLOW);
    assert_eq!(verdict_args(p, "mmap", [3, 2, 1, 2, 7, 3]), RET_KILL_THREAD);
    assert_eq!(
        verdict_args(p, "mmap", [1 << 33, 1 << 34, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_args(p, "mmap", [1 << 34, 1 << 33, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    let p = "ALLOW { mmap { addr > len, 5 < prot } }";
    assert_eq!(verdict_args(p, "mmap", [1 << 33, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict_args(p, "mmap", [0, 1, 6, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict_args(p, "mmap", [0, 1, 5, 0, 0, 0]), RET_KILL_THREAD);
}

#[test]
fn logic_operators_and_precedence() {
    // `,` is an OR with the lowest precedence; && binds tighter than ||.
    let p = "ALLOW { mmap { addr == 1 && len == 2 || prot == 3, flags == 4 } }";
    let v = |args: [u64; 6]| verdict_args(p, "mmap", args) == RET_ALLOW;
    assert!(v([1, 2, 0, 0, 0, 0]));
    assert!(v([0, 0, 3, 0, 0, 0]));
    assert!(v([0, 0, 0, 4, 0, 0]));
    assert!(!v([1, 0, 0, 0, 0, 0]));
    let p = "ALLOW { mmap { !(addr == 1 || len == 2) && !!(prot == 3) } }";
    let v = |args: [u64; 6]| verdict_args(p, "mmap", args) == RET_ALLOW;
    assert!(v([0, 0, 3, 0, 0, 0]));
    assert!(!v([1, 0, 3, 0, 0, 0]));
    assert!(!v([0, 2, 3, 0, 0, 0]));
    assert!(!v([0, 0, 4, 0, 0, 0]));
}

#[test]
fn bit_operators_precedence() {
    // From Kafel's tests: `&` binds tighter than `|`.
    let p = "ALLOW { read { buf | buf & count == buf } }";
    assert_eq!(verdict_args(p, "read", [0, 0x1234, 0, 0, 0, 0]), RET_ALLOW);
    let p = "ALLOW { read { (count | 2) & (fd | 3) == 2 } }";
    assert_eq!(verdict_args(p, "read", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict_args(p, "read", [0, 0, 1, 0, 0, 0]), RET_KILL_THREAD);
    let p = "ERRNO(1) { read { count == 1|2|4 } } DEFAULT ALLOW";
    assert_eq!(verdict_args(p, "read", [5, 0, 7, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(verdict_args(p, "read", [5, 0, 6, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn narrow_arguments_compare_low_32_bits() {
    // Kafel's rule (and its test `32bit_args`): fd is an int, so only its low half
    // counts, unless a constant needs 64 bits.
    let p = "ALLOW { fcntl { fd == 0x1234 } }";
    assert_eq!(verdict_args(p, "fcntl", [0x1234, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        verdict_args(p, "fcntl", [0x1_0000_1234, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_args(p, "fcntl", [0x1235, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    let p = "ALLOW { fcntl { fd == 0x100001234 } }";
    assert_eq!(
        verdict_args(p, "fcntl", [0x1234, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(
        verdict_args(p, "fcntl", [0x1_0000_1234, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    // An all-ones mask is simplified away first (Kafel does this), so 32 bits again.
    let p = "ALLOW { fcntl { fd & 0xffffffffffffffff == 1 } }";
    assert_eq!(
        verdict_args(p, "fcntl", [0x7_0000_0001, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    // 8-byte arguments always compare 64 bits.
    let p = "ALLOW { mmap { len == 1 } }";
    assert_eq!(
        verdict_args(p, "mmap", [0, 0x1_0000_0001, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
}

#[test]
fn constant_expressions_fold() {
    let p = "ALLOW { read { 1 == 1 }, write { 0x100001234 == 0x1234 } } DEFAULT ERRNO(1)";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    assert_eq!(verdict(p, "write"), RET_ERRNO | 1);
    let prog = build("ALLOW { write { 2 > 1 } } DEFAULT KILL");
    assert!(
        prog.filter.iter().all(|i| !(i.code == 0x20 && i.k >= 16)),
        "no argument loads for a constant condition"
    );
}

#[test]
fn first_matching_rule_wins_and_false_falls_through() {
    let p = "ALLOW { read { fd == 0 && count == 0 } }\nERRNO(1) { read { count == 0 } }\nTRAP(2) { read }\nALLOW { read }";
    assert_eq!(verdict_args(p, "read", [0, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(verdict_args(p, "read", [5, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(verdict_args(p, "read", [5, 0, 1, 0, 0, 0]), RET_TRAP | 2);
    let p = "ALLOW { exit, read }, DENY { read, write }";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    // Kafel's `duplicate_action_after_conditional`.
    let p = "ALLOW { read { fd == 1 }, exit }\nALLOW { read }\nALLOW { read }";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
}

#[test]
fn conditional_rule_falls_back_to_default() {
    let p = "ALLOW { write { fd == 1 } } DEFAULT ERRNO(9)";
    assert_eq!(verdict_args(p, "write", [2, 0, 0, 0, 0, 0]), RET_ERRNO | 9);
}

#[test]
fn policies_and_use() {
    let p =
        "POLICY a { ALLOW { read } }\nPOLICY b { USE a, ERRNO(1) { write } }\nUSE b DEFAULT KILL";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    assert_eq!(verdict(p, "write"), RET_ERRNO | 1);
    assert_eq!(verdict(p, "open"), RET_KILL_THREAD);
    // USE order decides: a's rules come where it is used.
    let p = "POLICY a { ALLOW { read } }\nERRNO(2) { read }, USE a";
    assert_eq!(verdict(p, "read"), RET_ERRNO | 2);
    // Using a policy twice is harmless.
    let p = "POLICY a { ALLOW { read } }\nPOLICY b { USE a }\nUSE a, USE b, USE a";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    assert_eq!(parse(p, &common::opts(X86)).unwrap().rules.len(), 1);
    // Unused policies add nothing.
    let p = "POLICY a { ALLOW { read } }\nDEFAULT ERRNO(3)";
    assert_eq!(verdict(p, "read"), RET_ERRNO | 3);
    assert_eq!(build(p).rule_count, 0);
    // Empty policies and empty blocks.
    let p = "POLICY a {} USE a DEFAULT KILL";
    assert_eq!(verdict(p, "read"), RET_KILL_THREAD);
    let p = "ALLOW {} DEFAULT ERRNO(1)";
    assert_eq!(verdict(p, "read"), RET_ERRNO | 1);
}

#[test]
fn use_x_default_y_form() {
    let p = "POLICY a { ALLOW { write, execve } } USE a DEFAULT KILL";
    assert_eq!(verdict(p, "execve"), RET_ALLOW);
    assert_eq!(verdict(p, "read"), RET_KILL_THREAD);
    let p = "POLICY a { ALLOW { write } } USE a DEFAULT ERRNO(1)";
    assert_eq!(verdict(p, "read"), RET_ERRNO | 1);
}

#[test]
fn policy_level_default_extension() {
    let p = "POLICY a { ALLOW { read }, DEFAULT ERRNO(4) }\nKILL { write }, USE a, ALLOW { open }\nDEFAULT KILL";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    assert_eq!(verdict(p, "write"), RET_KILL_THREAD);
    assert_eq!(
        verdict(p, "open"),
        RET_ERRNO | 4,
        "the policy's DEFAULT ends the search"
    );
    assert_eq!(verdict(p, "close"), RET_ERRNO | 4);
}

#[test]
fn file_scope_blocks_with_and_without_commas() {
    let a = "ALLOW { read } ERRNO(1) { write } DEFAULT KILL";
    let b = "ALLOW { read }, ERRNO(1) { write }\nDEFAULT KILL";
    assert_eq!(build(a).filter, build(b).filter);
    let c = "ALLOW { read }\n#define X 1\nERRNO(X) { write }\nDEFAULT KILL";
    assert_eq!(build(a).filter, build(c).filter);
}

#[test]
fn default_may_come_first() {
    let p = "DEFAULT ERRNO(1)\nALLOW { read }";
    assert_eq!(verdict(p, "read"), RET_ALLOW);
    assert_eq!(verdict(p, "write"), RET_ERRNO | 1);
}

#[test]
fn kernel_names_and_kafel_spellings_are_aliases() {
    for (a, b) in [
        ("umount2", "umount"),
        ("fstat", "newfstat"),
        ("stat", "newstat"),
        ("lstat", "newlstat"),
        ("uname", "newuname"),
        ("sendfile", "sendfile64"),
        ("_sysctl", "sysctl"),
    ] {
        assert_eq!(syscall_number(X86, a), syscall_number(X86, b), "{a} vs {b}");
        assert!(syscall_number(X86, a).is_some(), "{a}");
    }
    assert_eq!(syscall_number(X86, "umount2"), Some(166));
    assert_eq!(syscall_name(X86, 166), Some("umount2"));
    assert_eq!(syscall_name(X86, 5), Some("fstat"));
    assert_eq!(syscall_name(X86, 100_000), None);
    assert_eq!(
        verdict("KILL { umount2 } DEFAULT ALLOW", "umount"),
        RET_KILL_THREAD
    );
    assert_eq!(syscall_number(Arch::Aarch64, "umount"), Some(39));
    assert_eq!(
        syscall_number(Arch::Aarch64, "open"),
        None,
        "aarch64 has only openat"
    );
}

#[test]
fn includes_resolve_under_search_paths() {
    let dir = std::env::temp_dir().join(format!("kafel-inc-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("a.policy"),
        "#define FD 7\nPOLICY inc { ALLOW { write { fd == FD } } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/b.policy"),
        "POLICY incb { ERRNO(3) { read } }",
    )
    .unwrap();
    std::fs::write(dir.join("bad.policy"), "ALLOW { read,\n nope }").unwrap();
    std::fs::write(dir.join("self.policy"), "#include \"self.policy\"\n").unwrap();
    let o = CompileOptions {
        arch: X86,
        include_paths: vec!["/nonexistent-kafel".into(), dir.clone()],
    };
    let result = (|| {
        let p = "#include \"a.policy\" \"sub/b.policy\"; USE inc, USE incb\n";
        let prog = compile(p, &o)?;
        let parsed = parse(p, &o)?;
        for (name, args, want) in [
            ("write", [7, 0, 0, 0, 0, 0], RET_ALLOW),
            ("write", [8, 0, 0, 0, 0, 0], RET_KILL_THREAD),
            ("read", [0; 6], RET_ERRNO | 3),
        ] {
            let d = data(X86, nr(name), args);
            assert_eq!(run(&prog.filter, &d), Ok(want));
            assert_eq!(parsed.evaluate(&d), want);
        }
        let e = compile("#include \"bad.policy\"\n", &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}/bad.policy:2:2: Undefined identifier 'nope'",
                dir.display()
            )
        );
        let e = compile("#include \"missing.policy\"\n", &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:10: could not include file 'missing.policy'"
        );
        let e = compile("#include \"self.policy\"\n", &o).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("maximum include depth (16) exceeded"),
            "{e}"
        );
        // A directive must end with a newline or ';'.
        let e = compile("#include \"a.policy\"", &o).unwrap_err();
        assert_eq!(e.message, "unterminated include statement");
        let e = compile("#include\"a.policy\"\n", &o).unwrap_err();
        assert_eq!(e.to_string(), "1:9: unexpected filename");
        Ok::<_, Error>(())
    })();
    std::fs::remove_dir_all(&dir).unwrap();
    result.unwrap();
}

#[test]
fn include_without_search_path_is_a_clear_error() {
    let e = err("#include \"x.policy\"\nALLOW { read }");
    assert!(
        e.starts_with("1:10: could not include file 'x.policy' (no include search path"),
        "{e}"
    );
}

#[test]
fn rule_count_counts_effective_rules() {
    let p = "POLICY a { ALLOW { read, write { fd == 1 } } }\nPOLICY unused { ALLOW { open } }\nUSE a, ERRNO(1) { close, write }";
    assert_eq!(build(p).rule_count, 4);
}
