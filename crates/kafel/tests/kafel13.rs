//! C Kafel compatibility added for issue 13: `ON` architecture guards, C Kafel's
//! argument names (with warnings where Kafel and the kernel disagree), clone's
//! argument order, `ERRNO` up to 65535, and the x32 syscall numbers on x86_64.

mod common;
use common::*;
use kafel::interp::run;
use kafel::*;

fn for_arch(arch: Arch, policy: &str) -> Result<Program, Error> {
    compile(policy, &opts(arch))
}

fn verdict_on(arch: Arch, policy: &str, name: &str, args: [u64; 6]) -> u32 {
    let prog = for_arch(arch, policy).unwrap_or_else(|e| panic!("{arch} {policy}: {e}"));
    let nr = syscall_number(arch, name).unwrap_or_else(|| panic!("{arch} {name}"));
    let d = data(arch, nr, args);
    let got = run(&prog.filter, &d).unwrap();
    assert_eq!(got, parse(policy, &opts(arch)).unwrap().evaluate(&d));
    got
}

// ---- 1. architecture guards ----------------------------------------------------

#[test]
fn guarded_rules_apply_only_on_their_architectures() {
    let p = "ALLOW { getpid ON x86_64, getppid ON { aarch64, arm } } DEFAULT ERRNO(1)";
    let errno1 = RET_ERRNO | 1;
    assert_eq!(verdict_on(Arch::X86_64, p, "getpid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::X86_64, p, "getppid", [0; 6]), errno1);
    assert_eq!(verdict_on(Arch::Aarch64, p, "getpid", [0; 6]), errno1);
    assert_eq!(verdict_on(Arch::Aarch64, p, "getppid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::Arm, p, "getppid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::X86, p, "getppid", [0; 6]), errno1);
    // Kafel's other names (case-insensitive): amd64, arm64, i386/x86.
    let p = "ALLOW { getpid ON AMD64, getppid ON { ARM64, i386 } } DEFAULT KILL";
    assert_eq!(verdict_on(Arch::X86_64, p, "getpid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::Aarch64, p, "getppid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::X86, p, "getppid", [0; 6]), RET_ALLOW);
    assert_eq!(verdict_on(Arch::X86, p, "getpid", [0; 6]), RET_KILL_THREAD);
}

#[test]
fn guard_with_argument_block_and_custom_arguments() {
    let p = "ALLOW { fcntl ON x86_64 { fd == 3 }, fcntl(a, b) ON aarch64 { a == 4 } } \
             DEFAULT KILL";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "fcntl", [3, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_on(Arch::X86_64, p, "fcntl", [4, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
    assert_eq!(
        verdict_on(Arch::Aarch64, p, "fcntl", [4, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_on(Arch::Aarch64, p, "fcntl", [3, 0, 0, 0, 0, 0]),
        RET_KILL_THREAD
    );
}

#[test]
fn guarded_rules_for_other_architectures_are_not_checked() {
    // arm_fadvise64_64 exists on arm only; io_uring_setup's `bogus` is no argument.
    let p = "ALLOW { exit, arm_fadvise64_64 ON arm, io_uring_setup ON mips64 { bogus == 1 } } \
             DEFAULT KILL";
    let prog = for_arch(Arch::X86_64, p).unwrap();
    assert_eq!(prog.rule_count, 1);
    assert!(for_arch(Arch::Arm, p).is_ok());
    // Unguarded, the same name is an error on x86_64.
    let e = for_arch(Arch::X86_64, "ALLOW { arm_fadvise64_64 }").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:9: Undefined identifier 'arm_fadvise64_64'"
    );
}

#[test]
fn unknown_and_duplicate_guard_architectures_are_errors() {
    let e = err("ALLOW { exit, read ON madeup }");
    assert!(
        e.starts_with("1:23: Unknown architecture `madeup'; use x86_64 (amd64)"),
        "{e}"
    );
    let e = err("ALLOW { read ON { x86_64, amd64 } }");
    assert_eq!(
        e,
        "1:27: Duplicate architecture `amd64' in the ON list; name each architecture once"
    );
    let e = err("ALLOW { read ON { x86_64 x86 } }");
    assert_eq!(
        e,
        "1:26: syntax error, unexpected IDENTIFIER, expecting ',' or '}'"
    );
    let e = err("ALLOW { read ON }");
    assert_eq!(
        e,
        "1:17: syntax error, unexpected '}', expecting IDENTIFIER"
    );
}

// ---- 2. C Kafel's argument names ----------------------------------------------

#[test]
fn kafel_argument_names_from_the_issue() {
    // (arch, syscall, Kafel's name, the argument it reads)
    let cases = [
        (Arch::X86_64, "getrandom", "count", 1),
        (Arch::X86_64, "setns", "nstype", 1),
        (Arch::X86_64, "arch_prctl", "code", 0),
        (Arch::X86_64, "statx", "statxbuf", 4),
        (Arch::X86_64, "openat2", "size", 3),
        (Arch::X86_64, "vmsplice", "iov", 1),
        (Arch::X86_64, "fsconfig", "key", 2),
        (Arch::X86_64, "io_pgetevents", "sig", 5),
        (Arch::Aarch64, "getrandom", "count", 1),
        (Arch::Aarch64, "setns", "nstype", 1),
    ];
    for (arch, name, arg, index) in cases {
        let p = format!("ALLOW {{ {name} {{ {arg} == 7 }} }} DEFAULT KILL");
        let mut args = [0u64; 6];
        args[index] = 7;
        assert_eq!(verdict_on(arch, &p, name, args), RET_ALLOW, "{arch} {p}");
        assert_eq!(
            verdict_on(arch, &p, name, [0; 6]),
            RET_KILL_THREAD,
            "{arch} {p}"
        );
        assert!(
            for_arch(arch, &p).unwrap().warnings.is_empty(),
            "{arch} {p}"
        );
    }
    // The kernel's names still work.
    assert_eq!(
        verdict_on(
            Arch::X86_64,
            "ALLOW { getrandom { len == 7 } }",
            "getrandom",
            [0, 7, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
    assert_eq!(
        syscall_arg_aliases(Arch::X86_64, "getrandom").unwrap()[1],
        vec!["len", "count"]
    );
}

#[test]
fn disputed_kafel_names_follow_the_kernel_and_warn() {
    // futex_wait(uaddr, val, mask, flags, timeout, clockid): Kafel puts flags at 2.
    let p = "ALLOW { futex_wait { flags == 128 } } DEFAULT KILL";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "futex_wait", [0, 0, 0, 128, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_on(Arch::X86_64, p, "futex_wait", [0, 0, 128, 0, 0, 0]),
        RET_KILL_THREAD
    );
    let w = &for_arch(Arch::X86_64, p).unwrap().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].kind, WarningKind::KafelArgument);
    assert_eq!((w[0].line, w[0].col), (1, 22));
    assert!(
        w[0].to_string().starts_with(
            "1:22: warning: 'flags' of futex_wait reads argument 3 here, where the kernel \
             passes it; C Kafel's table reads argument 2 (the kernel's 'mask')"
        ),
        "{}",
        w[0]
    );
    // statmount(req, buf, bufsize, flags): Kafel's smbuf/buflen/flags move.
    for (name, index) in [("smbuf", 1), ("buflen", 2), ("flags", 3)] {
        let p = format!("ALLOW {{ statmount {{ {name} == 5 }} }} DEFAULT KILL");
        let mut args = [0u64; 6];
        args[index] = 5;
        assert_eq!(
            verdict_on(Arch::Aarch64, &p, "statmount", args),
            RET_ALLOW,
            "{name}"
        );
        assert_eq!(
            for_arch(Arch::Aarch64, &p).unwrap().warnings.len(),
            1,
            "{name}"
        );
    }
    // A Kafel name with no kernel counterpart reads Kafel's register, and warns.
    let p = "ALLOW { listmount { reqlen == 24 } } DEFAULT KILL";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "listmount", [0, 24, 0, 0, 0, 0]),
        RET_ALLOW
    );
    let w = &for_arch(Arch::X86_64, p).unwrap().warnings;
    assert!(
        w[0].message
            .contains("which the kernel declares as 'mnt_ids'"),
        "{w:?}"
    );
    // futex_wake(uaddr, mask, nr, flags), futex_requeue(waiters, flags, nr_wake, nr_requeue)
    let p = "ALLOW { futex_wake { nr_wake == 1 }, futex_requeue { nr_requeue == 2 } }";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "futex_wake", [0, 0, 1, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict_on(Arch::X86_64, p, "futex_requeue", [0, 0, 0, 2, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(for_arch(Arch::X86_64, p).unwrap().warnings.len(), 2);
    // The kernel's own names never warn.
    let p = "ALLOW { futex_wait { mask == 1 && flags == 2 }, statmount { buf == 0 } }";
    let w = &for_arch(Arch::X86_64, p).unwrap().warnings;
    assert_eq!(
        w.len(),
        1,
        "only 'flags' is also a disputed Kafel name: {w:?}"
    );
    assert!(w[0].message.starts_with("'flags' of futex_wait"), "{w:?}");
    // Custom argument names are the policy's own: no warning.
    let p = "ALLOW { futex_wait(a, b, flags) { flags == 1 } }";
    assert!(for_arch(Arch::X86_64, p).unwrap().warnings.is_empty());
}

// ---- 4. clone's argument order ----------------------------------------------------

#[test]
fn clone_argument_order_per_architecture() {
    // (arch, tls position, child_tidptr position)
    for (arch, tls, child) in [
        (Arch::X86_64, 4, 3),
        (Arch::Aarch64, 3, 4),
        (Arch::X86, 3, 4),
        (Arch::Arm, 3, 4),
    ] {
        for (name, index) in [("tls", tls), ("child_tidptr", child)] {
            let p = format!("ALLOW {{ clone {{ {name} == 0x1234 }} }} DEFAULT KILL");
            let mut args = [0u64; 6];
            args[index] = 0x1234;
            assert_eq!(
                verdict_on(arch, &p, "clone", args),
                RET_ALLOW,
                "{arch} {name}"
            );
            assert!(
                for_arch(arch, &p).unwrap().warnings.is_empty(),
                "{arch} {name}"
            );
        }
    }
    // aarch64 `clone { tls == X }` loads argument 3: offset 16 + 3 * 8 = 40.
    let prog = for_arch(Arch::Aarch64, "ALLOW { clone { tls == 1 } }").unwrap();
    assert!(
        prog.filter.iter().any(|i| i.code == 0x20 && i.k == 40),
        "{:?}",
        prog.filter
    );
    assert!(!prog.filter.iter().any(|i| i.code == 0x20 && i.k == 48));
}

// ---- 5. ERRNO up to 65535 ---------------------------------------------------------

#[test]
fn errno_above_4095_compiles_with_a_warning() {
    let p = "ERRNO(65535) { getpid } DEFAULT ERRNO(4096)";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "getpid", [0; 6]),
        RET_ERRNO | 65535
    );
    assert_eq!(
        verdict_on(Arch::X86_64, p, "getppid", [0; 6]),
        RET_ERRNO | 4096
    );
    let w = &build(p).warnings;
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|w| w.kind == WarningKind::ErrnoAboveMax));
    assert_eq!(
        w[0].to_string(),
        "1:7: warning: ERRNO(65535): the kernel caps the errno it returns at 4095, so the \
         program sees 4095; use a value from 0 to 4095"
    );
    assert!(build("ERRNO(4095) { getpid }").warnings.is_empty());
    // A #define'd constant is still accepted there, and checked the same way.
    let p = "#define E 5000\nERRNO(E) { getpid }";
    assert_eq!(
        verdict_on(Arch::X86_64, p, "getpid", [0; 6]),
        RET_ERRNO | 5000
    );
    assert_eq!(build(p).warnings.len(), 1);
    assert_eq!(
        err("#define E 70000\nERRNO(E) { getpid }"),
        "2:7: Errno value 70000 out of range (0-65535)"
    );
}

// ---- x32 ---------------------------------------------------------------------------

const X32_GETPID: u32 = 0x4000_0027;

fn run_nr(prog: &Program, arch: Arch, nr: u32) -> u32 {
    run(&prog.filter, &data(arch, nr, [0; 6])).unwrap()
}

#[test]
fn x32_numbers_get_the_foreign_architecture_verdict() {
    let prog = build("KILL { getpid } DEFAULT ALLOW");
    assert_eq!(run_nr(&prog, Arch::X86_64, 39), RET_KILL_THREAD);
    assert_eq!(run_nr(&prog, Arch::X86_64, 0), RET_ALLOW);
    assert_eq!(run_nr(&prog, Arch::X86_64, 0x3fff_ffff), RET_ALLOW);
    for nr in [
        X32_GETPID,
        0x4000_0000,
        0x4000_0001 + 511,
        0x7fff_ffff,
        u32::MAX,
    ] {
        assert_eq!(run_nr(&prog, Arch::X86_64, nr), RET_KILL_THREAD, "{nr:#x}");
    }
    // Rules for such numbers cannot let them through.
    let prog = build("ALLOW { SYSCALL[0x40000027] } DEFAULT ALLOW");
    assert_eq!(run_nr(&prog, Arch::X86_64, X32_GETPID), RET_KILL_THREAD);
    // The reference evaluation agrees.
    let policy = parse("DEFAULT ALLOW", &opts(Arch::X86_64)).unwrap();
    assert_eq!(
        policy.evaluate(&data(Arch::X86_64, X32_GETPID, [0; 6])),
        RET_KILL_THREAD
    );
}

#[test]
fn pragma_x32_lets_the_rules_decide_x32_numbers() {
    let p = "#pragma x32\nKILL { getpid, SYSCALL[0x40000027] } DEFAULT ALLOW";
    let prog = build(p);
    assert_eq!(run_nr(&prog, Arch::X86_64, X32_GETPID), RET_KILL_THREAD);
    assert_eq!(run_nr(&prog, Arch::X86_64, X32_GETPID + 1), RET_ALLOW);
    assert!(parse(p, &opts(Arch::X86_64)).unwrap().x32_rules);
    let e = err("#pragma x64\nDEFAULT ALLOW");
    assert!(e.starts_with("1:9: Unknown pragma 'x64'"), "{e}");
}

#[test]
fn x32_bit_means_nothing_special_on_other_architectures() {
    for arch in [Arch::Aarch64, Arch::X86, Arch::Arm] {
        let prog = for_arch(arch, "DEFAULT ALLOW").unwrap();
        assert_eq!(run_nr(&prog, arch, X32_GETPID), RET_ALLOW, "{arch}");
    }
}
