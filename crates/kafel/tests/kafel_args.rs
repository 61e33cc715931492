//! Walks C Kafel's syscall tables (tools/data/kafel_args.txt, extracted from
//! google/kafel by tools/kafel_args.py): every syscall name C Kafel knows has
//! its number here, and every argument name C Kafel accepts is accepted here,
//! reading C Kafel's position, or, where the kernel disagrees, the kernel's
//! position with a `--check` warning.

mod common;
use common::*;
use kafel::interp::run;
use kafel::*;

const TABLE: &str = include_str!("../tools/data/kafel_args.txt");

fn arch_of(name: &str) -> Arch {
    match name {
        "x86_64" => Arch::X86_64,
        "aarch64" => Arch::Aarch64,
        "i386" => Arch::X86,
        "arm" => Arch::Arm,
        _ => panic!("unknown arch {name} in kafel_args.txt"),
    }
}

#[test]
fn every_kafel_syscall_and_argument_name_is_accepted() {
    let (mut names, mut args, mut warned) = (0, 0, 0);
    for line in TABLE.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split_whitespace();
        let arch = arch_of(f.next().unwrap());
        let name = f.next().unwrap();
        let nr: u32 = f.next().unwrap().parse().unwrap();
        assert_eq!(syscall_number(arch, name), Some(nr), "{arch} {name}");
        names += 1;
        for (pos, slot) in f.enumerate() {
            if slot == "-" {
                continue;
            }
            let arg = slot.split(':').next().unwrap();
            // Kafel identifiers start with a letter: C Kafel cannot use `_type`
            // either (the lexers reject it).
            if arg.starts_with('_') {
                continue;
            }
            let policy = format!("ALLOW {{ {name} {{ {arg} == 7 }} }} DEFAULT KILL");
            let prog =
                compile(&policy, &opts(arch)).unwrap_or_else(|e| panic!("{arch}: {policy}: {e}"));
            args += 1;
            if prog.warnings.is_empty() {
                let mut a = [0u64; 6];
                a[pos] = 7;
                let allowed = run(&prog.filter, &data(arch, nr, a)).unwrap();
                assert_eq!(allowed, RET_ALLOW, "{arch}: {policy} reads argument {pos}");
                let other = run(&prog.filter, &data(arch, nr, [0; 6])).unwrap();
                assert_eq!(other, RET_KILL_THREAD, "{arch}: {policy}");
            } else {
                assert_eq!(prog.warnings.len(), 1, "{arch}: {policy}");
                assert_eq!(prog.warnings[0].kind, WarningKind::KafelArgument);
                warned += 1;
            }
        }
    }
    // The fixture covers the four tables (1418 syscalls at Kafel 76d0f41).
    assert!(names > 1400, "{names} syscall names");
    assert!(args > 3000, "{args} argument names");
    // Only the names listed in tools/data/kafel_arg_meanings.txt (and those the
    // kernel declares at another position) warn.
    assert!(warned > 0 && warned < 120, "{warned} warnings");
}
