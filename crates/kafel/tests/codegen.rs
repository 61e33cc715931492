//! Properties of the generated code: dispatch cost, long jumps, size limit.

mod common;
use common::*;
use kafel::interp::{run_counted, SeccompData};
use kafel::*;

fn seed() -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/tooljet-python-full.policy",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Numbers to probe: every syscall number, around them, and extremes.
fn probes() -> Vec<u32> {
    let mut v: Vec<u32> = (0..1100).collect();
    v.extend([u32::MAX, u32::MAX - 1, 0x4000_0000, 0x4000_0001, 1 << 31]);
    v
}

/// Checks that every syscall is decided in at most ceil(log2 r) + 4 instructions
/// before its argument checks, and that verdicts match direct evaluation.
fn check_bound(policy: &str, arch: Arch) -> usize {
    check_bound_slack(policy, arch, 0)
}

fn check_bound_slack(policy: &str, arch: Arch, slack: usize) -> usize {
    let o = common::opts(arch);
    let prog = compile(policy, &o).unwrap();
    assert_loadable(&prog.filter);
    let parsed = parse(policy, &o).unwrap();
    let r = range_count(&parsed);
    let bound = ceil_log2(r) + 4 + slack;
    let mut worst = 0;
    for nr in probes() {
        for args in [
            [0u64; 6],
            [1, 2, 3, 4, 5, 6],
            [u64::MAX; 6],
            [0x1_0000_0000; 6],
        ] {
            let d = data(arch, nr, args);
            let out = run_counted(&prog.filter, &d).unwrap();
            assert_eq!(out.ret, parsed.evaluate(&d), "nr {nr} args {args:?}");
            // Instructions before the first argument load (or all, for a plain verdict).
            let cost = out.before_args.unwrap_or(out.executed);
            assert!(
                cost <= bound,
                "nr {nr}: {cost} instructions > bound {bound} (r = {r})"
            );
            worst = worst.max(cost);
        }
    }
    worst
}

#[test]
fn dispatch_bound_seed_policy() {
    // i386 has no kexec_file_load, which the seed policy names.
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Arm] {
        check_bound(&seed(), arch);
    }
}

#[test]
fn dispatch_bound_allow_list() {
    check_bound(&allow_list_150(), Arch::X86_64);
}

#[test]
fn dispatch_bound_policies_with_argument_checks() {
    for n in [1, 10, 60, 120, 200] {
        check_bound(&rules_with_args(n), Arch::X86_64);
    }
}

/// With ~300 distinct argument-checked syscalls the search tree plus the jumps to
/// 300 separate check blocks no longer fit in 8-bit jump offsets: one more `ja`
/// hop is needed on some paths (documented limit of the bound).
#[test]
fn dispatch_bound_300_argument_checked_syscalls_needs_one_extra_hop() {
    let worst = check_bound_slack(&rules_with_args(300), Arch::X86_64, 1);
    assert!(worst <= ceil_log2(301) + 5);
}

#[test]
fn dispatch_is_a_tree_not_a_chain() {
    // 200 isolated syscalls, alternating verdicts: a linear chain would need ~200
    // comparisons for the last one.
    let rules: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "{} {{ SYSCALL[{}] }}",
                if i % 2 == 0 { "ALLOW" } else { "ERRNO(1)" },
                3 * i
            )
        })
        .collect();
    let worst = check_bound(&rules.join("\n"), Arch::X86_64);
    assert!(worst <= 9 + 4, "worst {worst}");
}

#[test]
fn long_jumps_are_handled() {
    let policy = rules_with_args(300);
    let prog = build(&policy);
    assert!(
        prog.filter.len() > 600,
        "big program: {}",
        prog.filter.len()
    );
    assert!(
        prog.filter.iter().any(|i| i.code == 0x05),
        "needs ja trampolines"
    );
    assert_loadable(&prog.filter);
    let parsed = parse(&policy, &common::opts(X86)).unwrap();
    for nr in probes() {
        for args in [
            [0u64; 6],
            [7, 0, 0, 0, 0, 0],
            [u64::MAX; 6],
            [0x1_0000_0001; 6],
        ] {
            let d = data(X86, nr, args);
            assert_eq!(
                run_counted(&prog.filter, &d).unwrap().ret,
                parsed.evaluate(&d)
            );
        }
    }
}

#[test]
fn trivial_policies_are_tiny() {
    let prog = build("DEFAULT KILL");
    assert_eq!(
        prog.filter,
        vec![SockFilter {
            code: 6,
            jt: 0,
            jf: 0,
            k: 0
        }]
    );
    // x86_64: arch check, number load, the x32 range (KILL), the verdict.
    let prog = build("DEFAULT ALLOW");
    assert_eq!(prog.filter.len(), 6, "{:?}", prog.filter);
    let d = SeccompData {
        arch: AUDIT_ARCH_X86_64,
        ..Default::default()
    };
    assert_eq!(kafel::interp::run(&prog.filter, &d), Ok(RET_ALLOW));
    let x32 = SeccompData {
        nr: 0x4000_0027,
        ..d
    };
    assert_eq!(kafel::interp::run(&prog.filter, &x32), Ok(RET_KILL_THREAD));
    // With `#pragma x32`, or on another architecture, no number load is needed.
    let prog = build("#pragma x32\nDEFAULT ALLOW");
    assert_eq!(prog.filter.len(), 4, "{:?}", prog.filter);
    assert_eq!(kafel::interp::run(&prog.filter, &x32), Ok(RET_ALLOW));
    let prog = compile("DEFAULT ALLOW", &common::opts(Arch::Aarch64)).unwrap();
    assert_eq!(prog.filter.len(), 4, "{:?}", prog.filter);
}

#[test]
fn scratch_memory_for_nested_bit_operations() {
    let p = "ALLOW { mmap { ((addr | len) & (prot | flags)) | ((fd & off) | (addr & prot)) == (len | fd) } }";
    let prog = build(p);
    assert!(prog.filter.iter().any(|i| i.code == 0x02), "uses ST");
    let parsed = parse(p, &common::opts(X86)).unwrap();
    for args in [
        [1, 2, 3, 4, 5, 6],
        [0; 6],
        [0xf0, 0x0f, 0xff, 0x10, 0x3, 0x1],
        [u64::MAX; 6],
    ] {
        let d = data(X86, nr("mmap"), args);
        assert_eq!(
            kafel::interp::run(&prog.filter, &d),
            Ok(parsed.evaluate(&d))
        );
    }
}
