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
/// before its argument checks (+1 in the last range on x86_64: the x32 guard),
/// and that verdicts match direct evaluation.
fn check_bound(policy: &str, arch: Arch) -> usize {
    check_bound_slack(policy, arch, 0)
}

fn check_bound_slack(policy: &str, arch: Arch, slack: usize) -> usize {
    let o = common::opts(arch);
    let prog = compile(policy, &o).unwrap();
    assert_loadable(&prog.filter);
    let parsed = parse(policy, &o).unwrap();
    let Dispatch {
        ranges: r,
        guarded_from,
    } = dispatch_shape(&parsed);
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
            let guard = usize::from(guarded_from.is_some_and(|g| u64::from(nr) >= g));
            let bound = ceil_log2(r) + 4 + slack + guard;
            assert!(
                cost <= bound,
                "nr {nr}: {cost} instructions > bound {bound} (r = {r})"
            );
            // The worst search cost, not counting the x32 guard.
            worst = worst.max(cost - guard);
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
    // x86_64: arch check, number load, the x32 guard (KILL), the verdict.
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

/// The x32 guard costs nothing for ordinary numbers: per syscall, a program runs
/// no more instructions than the same policy under `#pragma x32` (no guard), and
/// only numbers above the highest rule (the search's last range) pay one more.
#[test]
fn x32_guard_costs_nothing_below_the_highest_rule() {
    let policies = [
        seed(),
        allow_list_150(),
        allow_list_150().replace("DEFAULT KILL", "DEFAULT ERRNO(1)"),
        rules_with_args(1),
        rules_with_args(60),
        rules_with_args(300),
        "KILL { getpid } DEFAULT ALLOW".to_string(),
        "ALLOW { read, write } ERRNO(1) { close } DEFAULT LOG".to_string(),
        // The highest rule right below the x32 bit: no guard, a KILL range.
        "ALLOW { SYSCALL[0x3fffffff], read } DEFAULT ERRNO(2)".to_string(),
        "DEFAULT ALLOW".to_string(),
    ];
    for policy in &policies {
        let guarded = build(policy);
        let plain = build(&format!("#pragma x32\n{policy}"));
        let parsed = parse(policy, &common::opts(X86)).unwrap();
        let highest = parsed.rules.iter().map(|r| r.nr).max();
        // Programs with `ja` trampolines: the guard's two or three instructions move
        // jump distances, which can move a trampoline onto another path (the known
        // one extra hop of the 300-syscall bound): +1 for some numbers, and a total
        // that can drift by a few instructions either way. Otherwise the search is
        // the same, and so is the total below the highest rule.
        let hop = usize::from(guarded.filter.iter().any(|i| i.code == 0x05));
        let mut extra_numbers = 0;
        let (mut total_g, mut total_p) = (0, 0);
        for nr in probes() {
            for args in [[0u64; 6], [3, 0x1000, 4096, 0, 0, 0], [u64::MAX; 6]] {
                let d = data(X86, nr, args);
                let g = run_counted(&guarded.filter, &d).unwrap();
                let p = run_counted(&plain.filter, &d).unwrap();
                // Without rules there is no search: the guard also loads the number.
                let extra = match highest {
                    None => 2,
                    Some(h) => usize::from(nr > h),
                };
                if extra == 0 {
                    total_g += g.executed;
                    total_p += p.executed;
                }
                let allowed = p.executed + extra + hop;
                assert!(
                    g.executed <= allowed,
                    "{policy:.40}: nr {nr:#x} args {args:?}: {} instructions with the x32 \
                     guard, {} without",
                    g.executed,
                    p.executed
                );
                if g.executed > p.executed {
                    extra_numbers += 1;
                }
                if nr < X32_SYSCALL_BIT {
                    assert_eq!(g.ret, p.ret, "nr {nr}");
                } else {
                    assert_eq!(g.ret, RET_KILL_THREAD, "nr {nr:#x}");
                }
            }
        }
        assert!(
            hop == 1 || total_g <= total_p,
            "{policy:.40}: {total_g} instructions with the x32 guard, {total_p} without, \
             summed over the numbers up to the highest rule"
        );
        // Sanity: the comparison saw the guard somewhere unless DEFAULT is KILL.
        if parsed.default_action != RET_KILL_THREAD && !policy.contains("0x3fffffff") {
            assert!(extra_numbers > 0, "{policy:.40}: no guard seen");
        }
    }
}
