//! The seed config's policy and the policies of nsjail's and Kafel's READMEs.

mod common;
use common::*;
use kafel::interp::run;
use kafel::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn seed_fixture_matches_the_example_config() {
    let cfg = format!(
        "{}/../../examples/tooljet-python-full.cfg",
        env!("CARGO_MANIFEST_DIR")
    );
    let Ok(cfg) = std::fs::read_to_string(&cfg) else {
        eprintln!("SKIP seed_fixture_matches_the_example_config: {cfg} not found");
        return;
    };
    let lines: Vec<&str> = cfg
        .lines()
        .filter_map(|l| l.trim().strip_prefix("seccomp_string:"))
        .map(|v| v.trim().trim_matches('"'))
        .collect();
    assert_eq!(lines.join("\n"), fixture("tooljet-python-full.policy"));
}

#[test]
fn seed_policy_compiles_and_decides_as_written() {
    let policy = fixture("tooljet-python-full.policy");
    assert_eq!(
        policy.lines().nth(18),
        Some(" umount2,"),
        "line 19 is umount2"
    );
    // i386 has no kexec_file_load (neither has C Kafel's i386 table).
    let e = compile(&policy, &common::opts(Arch::X86)).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("Undefined identifier 'kexec_file_load'"),
        "{e}"
    );
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Arm] {
        let o = common::opts(arch);
        let prog = compile(&policy, &o).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(prog.rule_count, 22);
        let n = |name: &str| syscall_number(arch, name).unwrap();
        let v = |nr: u32| run(&prog.filter, &data(arch, nr, [0; 6])).unwrap();
        assert_eq!(v(n("ptrace")), RET_ERRNO | 1, "{arch}");
        for killed in [
            "umount2", "umount", "mount", "clone", "clone3", "bpf", "unshare", "setns",
        ] {
            assert_eq!(v(n(killed)), RET_KILL_THREAD, "{arch} {killed}");
        }
        for allowed in ["read", "write", "openat", "execve", "exit_group", "mmap"] {
            assert_eq!(v(n(allowed)), RET_ALLOW, "{arch} {allowed}");
        }
        assert_eq!(v(100_000), RET_ALLOW, "unknown numbers get the default");
    }
}

#[test]
fn nsjail_readme_config_policy() {
    let p = fixture("nsjail-readme-config.policy");
    assert_eq!(verdict(&p, "exit_group"), RET_ALLOW);
    assert_eq!(verdict(&p, "open"), RET_KILL_THREAD);
}

#[test]
fn nsjail_readme_seccomp_example() {
    let p = fixture("nsjail-readme-seccomp.policy");
    for name in [
        "read",
        "write",
        "open",
        "close",
        "mmap",
        "munmap",
        "brk",
        "exit_group",
    ] {
        assert_eq!(verdict(&p, name), RET_ALLOW, "{name}");
    }
    assert_eq!(verdict(&p, "execve"), RET_KILL_THREAD);
    assert_eq!(build(&p).rule_count, 8);
}

#[test]
fn nsjail_readme_fuzzing_placeholder_is_rejected() {
    assert_eq!(
        err(&fixture("nsjail-readme-fuzzing.policy")),
        "1:9: unexpected char '.'"
    );
}

#[test]
fn kafel_readme_example_with_entry_point_spellings() {
    let p = fixture("kafel-readme-example.policy");
    assert_eq!(verdict(&p, "fstat"), RET_ALLOW);
    assert_eq!(verdict(&p, "stat"), RET_ALLOW);
    assert_eq!(verdict(&p, "getppid"), RET_ALLOW);
    assert_eq!(verdict(&p, "socket"), RET_KILL_THREAD);
}
