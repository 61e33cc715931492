//! The 32-bit architectures, i386 and arm: their tables against the kernel's
//! (tools/data, independent of the generated Rust), C Kafel's spellings, the
//! architecture check, 32-bit argument comparisons and the command line.

mod common;
use common::*;
use kafel::interp::run;
use kafel::*;
use std::collections::{HashMap, HashSet};

/// `(number, abi, name)` rows of a kernel table in tools/data.
fn kernel_rows(file: &str) -> Vec<(u32, String, String)> {
    let path = format!("{}/tools/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// C Kafel's spellings for `arch` that name another number than the kernel's.
fn kafel_names(arch: Arch) -> HashMap<String, u32> {
    let text = include_str!("../tools/data/kafel_names_32.txt");
    text.lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() == 3 && f[0] == arch.name())
        .map(|f| (f[1].to_string(), f[2].parse().unwrap()))
        .collect()
}

fn check_against_kernel(arch: Arch, file: &str, abis: &[&str]) {
    let rows: Vec<_> = kernel_rows(file)
        .into_iter()
        .filter(|r| abis.contains(&r.1.as_str()))
        .collect();
    let renamed = kafel_names(arch);
    let mut seen_nr = HashSet::new();
    let mut seen_name = HashSet::new();
    for (nr, _, name) in &rows {
        assert!(seen_nr.insert(*nr), "{arch}: number {nr} twice in {file}");
        assert!(
            seen_name.insert(name.clone()),
            "{arch}: {name} twice in {file}"
        );
        assert_eq!(syscall_name(arch, *nr), Some(name.as_str()), "{arch} {nr}");
        let want = renamed.get(name).copied().unwrap_or(*nr);
        assert_eq!(syscall_number(arch, name), Some(want), "{arch} {name}");
    }
    assert_eq!(
        syscalls(arch).count(),
        rows.len(),
        "{arch}: every row, nothing more"
    );
    for (name, nr) in &renamed {
        assert_eq!(
            syscall_number(arch, name),
            Some(*nr),
            "{arch}: Kafel's {name}"
        );
    }
    // Names are unique (a sorted, strictly increasing list) and numbers too.
    let names: Vec<_> = syscall_names(arch).map(|(n, _)| n).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "{arch}: names unique"
    );
    let nrs: Vec<_> = syscalls(arch).map(|(_, n)| n).collect();
    assert!(
        nrs.windows(2).all(|w| w[0] < w[1]),
        "{arch}: numbers unique"
    );
}

#[test]
fn i386_table_matches_the_kernel_table() {
    check_against_kernel(Arch::X86, "syscall_32.tbl", &["i386"]);
    for (name, nr) in [
        ("restart_syscall", 0),
        ("read", 3),
        ("write", 4),
        ("open", 5),
        ("execve", 11),
        ("getpid", 20),
        ("ioctl", 54),
        ("socketcall", 102),
        ("clone", 120),
        ("exit_group", 252),
        ("openat", 295),
        ("socket", 359),
        ("statx", 383),
        ("clock_gettime64", 403),
        ("clone3", 435),
        ("mseal", 462),
    ] {
        assert_eq!(syscall_number(Arch::X86, name), Some(nr), "i386 {name}");
    }
    assert_eq!(syscalls(Arch::X86).count(), 460);
}

#[test]
fn arm_table_matches_the_kernel_table() {
    check_against_kernel(
        Arch::Arm,
        "syscall_arm.tbl",
        &["common", "eabi", "oabi", "private"],
    );
    for (name, nr) in [
        ("restart_syscall", 0),
        ("read", 3),
        ("write", 4),
        ("execve", 11),
        ("ioctl", 54),
        ("clone", 120),
        ("exit_group", 248),
        ("socket", 281),
        ("openat", 322),
        ("accept4", 366),
        ("clone3", 435),
        ("mseal", 462),
        ("time", 13), // OABI only
        // ARM private syscalls: __ARM_NR_BASE (0x0f0000) + 1..6.
        ("breakpoint", 0xf0001),
        ("cacheflush", 0xf0002),
        ("usr26", 0xf0003),
        ("usr32", 0xf0004),
        ("set_tls", 0xf0005),
        ("get_tls", 0xf0006),
    ] {
        assert_eq!(syscall_number(Arch::Arm, name), Some(nr), "arm {name}");
    }
    assert_eq!(
        syscall_number(Arch::Arm, "waitpid"),
        None,
        "7 is unused on arm"
    );
}

#[test]
fn kafel_spellings_and_kernel_names_are_both_accepted() {
    // Kafel named the syscalls after their entry points; the kernel's names stay
    // accepted where they do not collide.
    for (arch, name, nr) in [
        (Arch::X86, "umount2", 52),
        (Arch::X86, "umount", 52),
        (Arch::X86, "oldumount", 22),
        (Arch::X86, "chown", 212),
        (Arch::X86, "chown32", 212),
        (Arch::X86, "chown16", 182),
        (Arch::X86, "getuid", 199),
        (Arch::X86, "getuid16", 24),
        (Arch::X86, "fstat", 28),
        (Arch::X86, "newfstat", 108),
        (Arch::X86, "stat64", 195),
        (Arch::X86, "llseek", 140),
        (Arch::X86, "_llseek", 140),
        (Arch::X86, "sysctl", 149),
        (Arch::X86, "old_mmap", 90),
        (Arch::X86, "mmap_pgoff", 192),
        (Arch::X86, "mmap2", 192),
        (Arch::X86, "select", 142),
        (Arch::X86, "_newselect", 142),
        (Arch::X86, "old_select", 82),
        (Arch::Arm, "umount2", 52),
        (Arch::Arm, "umount", 52),
        (Arch::Arm, "old_oldumount", 22),
        (Arch::Arm, "chown", 212),
        (Arch::Arm, "chown16", 182),
        (Arch::Arm, "newstat", 106),
        (Arch::Arm, "stat", 106),
        (Arch::Arm, "arm_sync_file_range", 341),
        (Arch::Arm, "sync_file_range2", 341),
        (Arch::Arm, "arm_fadvise64_64", 270),
        (Arch::Arm, "getrlimit", 191),
        (Arch::Arm, "ugetrlimit", 191),
        (Arch::Arm, "old_getrlimit", 76),
    ] {
        assert_eq!(syscall_number(arch, name), Some(nr), "{arch} {name}");
        if name.starts_with('_') {
            continue; // not a Kafel identifier; reachable through the API only
        }
        let prog = compile(&format!("ALLOW {{ {name} }}"), &opts(arch)).unwrap();
        assert_eq!(
            run(&prog.filter, &data(arch, nr, [0; 6])),
            Ok(RET_ALLOW),
            "{arch} {name}"
        );
    }
    let e = compile("ALLOW { newfstatat }", &opts(Arch::X86)).unwrap_err();
    assert_eq!(e.to_string(), "1:9: Undefined identifier 'newfstatat'");
}

#[test]
fn arch_values_and_names() {
    assert_eq!(Arch::X86.audit_arch(), 0x4000_0003);
    assert_eq!(Arch::Arm.audit_arch(), 0x4000_0028);
    assert_eq!(AUDIT_ARCH_I386, 0x4000_0003);
    assert_eq!(AUDIT_ARCH_ARM, 0x4000_0028);
    assert_eq!(Arch::from_name("i386"), Some(Arch::X86));
    assert_eq!(Arch::from_name("x86"), Some(Arch::X86));
    assert_eq!(Arch::from_name("arm"), Some(Arch::Arm));
    assert_eq!(Arch::X86.name(), "i386");
    assert_eq!(Arch::Arm.to_string(), "arm");
    assert!(Arch::X86.is_32bit() && Arch::Arm.is_32bit());
    assert!(!Arch::X86_64.is_32bit() && !Arch::Aarch64.is_32bit());
}

#[test]
fn a_foreign_arch_is_killed() {
    for arch in [Arch::X86, Arch::Arm] {
        let prog = compile("ALLOW { read } DEFAULT ALLOW", &opts(arch)).unwrap();
        let read = syscall_number(arch, "read").unwrap();
        assert_eq!(run(&prog.filter, &data(arch, read, [0; 6])), Ok(RET_ALLOW));
        for other in Arch::ALL.into_iter().filter(|a| *a != arch) {
            assert_eq!(
                run(&prog.filter, &data(other, read, [0; 6])),
                Ok(RET_KILL_THREAD),
                "{arch} filter, {other} data"
            );
        }
    }
}

#[test]
fn arguments_compare_their_low_half_on_32_bit_arches() {
    let hi = 0x7_0000_0000u64;
    for arch in [Arch::X86, Arch::Arm] {
        let write = syscall_number(arch, "write").unwrap();
        let verdict = |policy: &str, args: [u64; 6]| {
            let prog = compile(policy, &opts(arch)).unwrap();
            let d = data(arch, write, args);
            let v = run(&prog.filter, &d).unwrap();
            assert_eq!(
                v,
                parse(policy, &opts(arch)).unwrap().evaluate(&d),
                "{policy}"
            );
            v
        };
        // A named argument: `count` is size_t, 8 bytes on x86_64, 4 here.
        let p = "ALLOW { write { count == 1 } } DEFAULT KILL";
        assert_eq!(verdict(p, [0, 0, hi | 1, 0, 0, 0]), RET_ALLOW, "{arch}");
        assert_eq!(verdict(p, [0, 0, 2, 0, 0, 0]), RET_KILL_THREAD, "{arch}");
        let p = "ALLOW { write { count > 0xfffffff0 } } DEFAULT KILL";
        assert_eq!(verdict(p, [0, 0, hi, 0, 0, 0]), RET_KILL_THREAD, "{arch}");
        // Custom argument names are 32 bits too.
        let p = "ALLOW { write(a, b, c) { c != 5 } } DEFAULT KILL";
        assert_eq!(
            verdict(p, [0, 0, hi | 5, 0, 0, 0]),
            RET_KILL_THREAD,
            "{arch}"
        );
        let p = "ALLOW { SYSCALL[4](a) { a == 1 } } DEFAULT ERRNO(1)";
        let prog = compile(p, &opts(arch)).unwrap();
        assert_eq!(
            run(&prog.filter, &data(arch, 4, [hi | 1, 0, 0, 0, 0, 0])),
            Ok(RET_ALLOW)
        );
        // As in C Kafel, a constant above 32 bits makes the comparison 64-bit.
        let p = "ALLOW { write { count == 0x700000001 } } DEFAULT KILL";
        assert_eq!(verdict(p, [0, 0, hi | 1, 0, 0, 0]), RET_ALLOW, "{arch}");
        assert_eq!(verdict(p, [0, 0, 1, 0, 0, 0]), RET_KILL_THREAD, "{arch}");
    }
    // On x86_64 the same 8-byte argument compares all 64 bits.
    let p = "ALLOW { write { count == 1 } } DEFAULT KILL";
    let prog = compile(p, &opts(Arch::X86_64)).unwrap();
    let d = data(Arch::X86_64, 1, [0, 0, hi | 1, 0, 0, 0]);
    assert_eq!(run(&prog.filter, &d), Ok(RET_KILL_THREAD));
}

#[test]
fn argument_names_on_32_bit_arches() {
    assert_eq!(
        syscall_arg_names(Arch::X86, "write"),
        Some(vec!["fd", "buf", "count"])
    );
    // CLONE_BACKWARDS: tls before child_tidptr.
    assert_eq!(
        syscall_arg_names(Arch::Arm, "clone"),
        Some(vec![
            "clone_flags",
            "newsp",
            "parent_tidptr",
            "tls",
            "child_tidptr"
        ])
    );
    // A 64-bit parameter takes two registers (on arm an even-numbered pair): the
    // kernel declares no usable names, so C Kafel's names are taken, each at the
    // register that holds (the low half of) what it names. Where that is not
    // Kafel's position, the policy compiles and `--check` warns.
    assert_eq!(
        syscall_arg_names(Arch::Arm, "pread64"),
        Some(vec!["fd", "buf", "count", "", "pos"])
    );
    let prog = compile("ALLOW { pread64 { pos == 9 } }", &opts(Arch::Arm)).unwrap();
    assert_eq!(prog.warnings.len(), 1, "{:?}", prog.warnings);
    assert_eq!(prog.warnings[0].kind, kafel::WarningKind::KafelArgument);
    let nr = kafel::syscall_number(Arch::Arm, "pread64").unwrap();
    let allowed = data(Arch::Arm, nr, [0, 0, 0, 0, 9, 0]);
    let padding = data(Arch::Arm, nr, [0, 0, 0, 9, 0, 0]);
    assert_eq!(run(&prog.filter, &allowed), Ok(RET_ALLOW));
    assert_eq!(run(&prog.filter, &padding), Ok(RET_KILL_THREAD));
    // i386 passes pos right after count (no alignment): Kafel's position, no warning.
    let prog = compile("ALLOW { pread64 { pos == 9 } }", &opts(Arch::X86)).unwrap();
    assert!(prog.warnings.is_empty(), "{:?}", prog.warnings);
    let nr = kafel::syscall_number(Arch::X86, "pread64").unwrap();
    assert_eq!(
        run(&prog.filter, &data(Arch::X86, nr, [0, 0, 0, 9, 0, 0])),
        Ok(RET_ALLOW)
    );
    // fanotify_mark(fd, flags, mask (two registers), dfd, pathname) on i386.
    assert_eq!(
        syscall_arg_names(Arch::X86, "fanotify_mark"),
        Some(vec!["fanotify_fd", "flags", "mask", "", "dfd", "pathname"])
    );
}
