//! The x32 hole (issue 13): on x86_64 a syscall number with bit 30 set
//! (`__X32_SYSCALL_BIT`) passes the `AUDIT_ARCH_X86_64` check, so with C Kafel
//! `KILL { getpid } DEFAULT ALLOW` lets x32 getpid (0x40000027) run wherever the
//! kernel has x32 enabled. Our filters give such numbers the foreign-ABI
//! verdict: the jailed program dies of SIGSYS (nsjail exits 159).
//!
//! The jailed program is this test binary, re-run with `NSJAIL_X32_PROBE` set:
//! `x32_probe_helper` then makes the raw syscall with inline asm and prints
//! what it returned.
#![cfg(target_arch = "x86_64")]

mod common;

use common::*;

const PROBE_ENV: &str = "NSJAIL_X32_PROBE";
/// x32 getpid: `__X32_SYSCALL_BIT | 39`.
const X32_GETPID: i64 = 0x4000_0027;

/// A raw syscall without arguments; returns rax (a negative errno on failure).
fn raw_syscall0(nr: i64) -> i64 {
    let ret: i64;
    // SAFETY: a syscall without arguments (x32 getpid) touches no memory of
    // ours; rcx and r11 are clobbered by the `syscall` instruction.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Not a test of its own: the program jailed by the tests below. Without
/// `NSJAIL_X32_PROBE` it does nothing. Otherwise it forks (seccomp's KILL ends
/// only the calling thread, and libtest runs this on a thread of its own; the
/// forked child is a process of one thread), and the child makes the raw x32
/// getpid (mode `x32`) or nothing (mode `alive`) and exits 38 on ENOSYS, 0 on
/// success (or in mode `alive`), 1 otherwise. The parent prints how the child
/// ended: `x32_child=exit <code>` or `x32_child=signal <number>`.
#[test]
fn x32_probe_helper() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    // SAFETY: the child only makes raw syscalls and _exit()s: nothing that
    // needs a lock another thread of this process may hold.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = if mode == "x32" {
            match raw_syscall0(X32_GETPID) {
                r if r == -i64::from(libc::ENOSYS) => 38,
                r if r > 0 => 0,
                _ => 1,
            }
        } else {
            0
        };
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    // On a line of its own: libtest has printed "test x32_probe_helper ... ".
    if libc::WIFSIGNALED(status) {
        println!("\nx32_child=signal {}", libc::WTERMSIG(status));
    } else {
        println!("\nx32_child=exit {}", libc::WEXITSTATUS(status));
    }
    std::process::exit(0);
}

/// How the probe's child ended, from a jailed run's stdout.
fn child_end(o: &Out) -> String {
    assert_eq!(o.code, Some(0), "the probe itself must survive: {o:?}");
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("x32_child="))
        .unwrap_or_else(|| panic!("no probe output: {o:?}"))
        .trim()
        .to_string()
}

/// Runs this test binary's probe in a jail, with `extra` nsjail options.
fn jailed_probe(mode: &str, extra: &[&str]) -> Out {
    let me = std::env::current_exe().expect("test binary path");
    let me = me.to_str().expect("UTF-8 path");
    let env = format!("{PROBE_ENV}={mode}");
    let mut args = vec!["-Mo", "--chroot", "/", "-q", "-E", &env];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--",
        me,
        "--exact",
        "x32_probe_helper",
        "--nocapture",
        "--test-threads=1",
    ]);
    run(&args)
}

const POLICY: &str = "KILL { getpid } DEFAULT ALLOW";

#[test]
fn x32_getpid_is_killed_by_a_native_policy() {
    let name = "x32_getpid_is_killed_by_a_native_policy";
    if !root_or_skip(name) {
        return;
    }
    let sigsys = format!("signal {}", libc::SIGSYS);
    // Control: under the filter, a child that makes no x32 call lives (so the
    // SIGSYS below is the x32 call's).
    let o = jailed_probe("alive", &["--seccomp_string", POLICY]);
    assert_eq!(child_end(&o), "exit 0");

    // Without a filter: ENOSYS where the kernel has no x32, a pid where it has.
    let unfiltered = child_end(&jailed_probe("x32", &[]));
    match unfiltered.as_str() {
        "exit 38" => eprintln!("NOTE: {name}: this kernel has no x32 (the raw call got ENOSYS)"),
        "exit 0" => eprintln!(
            "SKIP: {name}: ENOSYS without a filter: this kernel runs x32 syscalls \
             (x32 getpid succeeded); the filter below is what stops it"
        ),
        other => panic!("x32 getpid without a filter: child {other}"),
    }

    // With the filter: the x32 number gets the foreign-ABI verdict: SIGSYS.
    let o = jailed_probe("x32", &["--seccomp_string", POLICY]);
    assert_eq!(child_end(&o), sigsys, "{o:?}");

    // `#pragma x32` opts out: the x32 number falls to DEFAULT ALLOW again.
    let pragma = format!("#pragma x32\n{POLICY}");
    let o = jailed_probe("x32", &["--seccomp_string", &pragma]);
    assert_eq!(child_end(&o), unfiltered, "{o:?}");
}
