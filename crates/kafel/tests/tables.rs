//! The generated syscall tables against independent sources.

use kafel::{syscall_name, syscall_number, syscalls, Arch};

/// Every `SYS_*` constant the `libc` crate has for x86_64 (all of them: the list
/// was taken from libc's `not_x32.rs`), compared with the generated table.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_64_table_agrees_with_libc() {
    macro_rules! check {
        ($($name:ident),* $(,)?) => {{
            let mut n = 0;
            $(
                paste_check(stringify!($name), libc::$name);
                n += 1;
            )*
            n
        }};
    }
    fn paste_check(konst: &str, value: libc::c_long) {
        let name = konst.strip_prefix("SYS_").unwrap();
        assert_eq!(
            syscall_number(Arch::X86_64, name),
            Some(value as u32),
            "number of {name}"
        );
        assert_eq!(
            syscall_name(Arch::X86_64, value as u32),
            Some(name),
            "name of {value}"
        );
    }
    let n = check!(
        SYS__sysctl,
        SYS_accept,
        SYS_accept4,
        SYS_access,
        SYS_acct,
        SYS_add_key,
        SYS_adjtimex,
        SYS_afs_syscall,
        SYS_alarm,
        SYS_arch_prctl,
        SYS_bind,
        SYS_bpf,
        SYS_brk,
        SYS_capget,
        SYS_capset,
        SYS_chdir,
        SYS_chmod,
        SYS_chown,
        SYS_chroot,
        SYS_clock_adjtime,
        SYS_clock_getres,
        SYS_clock_gettime,
        SYS_clock_nanosleep,
        SYS_clock_settime,
        SYS_clone,
        SYS_clone3,
        SYS_close,
        SYS_close_range,
        SYS_connect,
        SYS_copy_file_range,
        SYS_creat,
        SYS_delete_module,
        SYS_dup,
        SYS_dup2,
        SYS_dup3,
        SYS_epoll_create,
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_ctl_old,
        SYS_epoll_pwait,
        SYS_epoll_pwait2,
        SYS_epoll_wait,
        SYS_epoll_wait_old,
        SYS_eventfd,
        SYS_eventfd2,
        SYS_execve,
        SYS_execveat,
        SYS_exit,
        SYS_exit_group,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_fadvise64,
        SYS_fallocate,
        SYS_fanotify_init,
        SYS_fanotify_mark,
        SYS_fchdir,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_fchmodat2,
        SYS_fchown,
        SYS_fchownat,
        SYS_fcntl,
        SYS_fdatasync,
        SYS_fgetxattr,
        SYS_finit_module,
        SYS_flistxattr,
        SYS_flock,
        SYS_fork,
        SYS_fremovexattr,
        SYS_fsconfig,
        SYS_fsetxattr,
        SYS_fsmount,
        SYS_fsopen,
        SYS_fspick,
        SYS_fstat,
        SYS_fstatfs,
        SYS_fsync,
        SYS_ftruncate,
        SYS_futex,
        SYS_futex_waitv,
        SYS_futimesat,
        SYS_get_mempolicy,
        SYS_get_robust_list,
        SYS_get_thread_area,
        SYS_getcpu,
        SYS_getcwd,
        SYS_getdents,
        SYS_getdents64,
        SYS_getegid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getgroups,
        SYS_getitimer,
        SYS_getpeername,
        SYS_getpgid,
        SYS_getpgrp,
        SYS_getpid,
        SYS_getpmsg,
        SYS_getppid,
        SYS_getpriority,
        SYS_getrandom,
        SYS_getresgid,
        SYS_getresuid,
        SYS_getrlimit,
        SYS_getrusage,
        SYS_getsid,
        SYS_getsockname,
        SYS_getsockopt,
        SYS_gettid,
        SYS_gettimeofday,
        SYS_getuid,
        SYS_getxattr,
        SYS_init_module,
        SYS_inotify_add_watch,
        SYS_inotify_init,
        SYS_inotify_init1,
        SYS_inotify_rm_watch,
        SYS_io_cancel,
        SYS_io_destroy,
        SYS_io_getevents,
        SYS_io_setup,
        SYS_io_submit,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_io_uring_setup,
        SYS_ioctl,
        SYS_ioperm,
        SYS_iopl,
        SYS_ioprio_get,
        SYS_ioprio_set,
        SYS_kcmp,
        SYS_kexec_file_load,
        SYS_kexec_load,
        SYS_keyctl,
        SYS_kill,
        SYS_landlock_add_rule,
        SYS_landlock_create_ruleset,
        SYS_landlock_restrict_self,
        SYS_lchown,
        SYS_lgetxattr,
        SYS_link,
        SYS_linkat,
        SYS_listen,
        SYS_listxattr,
        SYS_llistxattr,
        SYS_lookup_dcookie,
        SYS_lremovexattr,
        SYS_lseek,
        SYS_lsetxattr,
        SYS_lstat,
        SYS_madvise,
        SYS_mbind,
        SYS_membarrier,
        SYS_memfd_create,
        SYS_memfd_secret,
        SYS_migrate_pages,
        SYS_mincore,
        SYS_mkdir,
        SYS_mkdirat,
        SYS_mknod,
        SYS_mknodat,
        SYS_mlock,
        SYS_mlock2,
        SYS_mlockall,
        SYS_mmap,
        SYS_modify_ldt,
        SYS_mount,
        SYS_mount_setattr,
        SYS_move_mount,
        SYS_move_pages,
        SYS_mprotect,
        SYS_mq_getsetattr,
        SYS_mq_notify,
        SYS_mq_open,
        SYS_mq_timedreceive,
        SYS_mq_timedsend,
        SYS_mq_unlink,
        SYS_mremap,
        SYS_mseal,
        SYS_msgctl,
        SYS_msgget,
        SYS_msgrcv,
        SYS_msgsnd,
        SYS_msync,
        SYS_munlock,
        SYS_munlockall,
        SYS_munmap,
        SYS_name_to_handle_at,
        SYS_nanosleep,
        SYS_newfstatat,
        SYS_nfsservctl,
        SYS_open,
        SYS_open_by_handle_at,
        SYS_open_tree,
        SYS_openat,
        SYS_openat2,
        SYS_pause,
        SYS_perf_event_open,
        SYS_personality,
        SYS_pidfd_getfd,
        SYS_pidfd_open,
        SYS_pidfd_send_signal,
        SYS_pipe,
        SYS_pipe2,
        SYS_pivot_root,
        SYS_pkey_alloc,
        SYS_pkey_free,
        SYS_pkey_mprotect,
        SYS_poll,
        SYS_ppoll,
        SYS_prctl,
        SYS_pread64,
        SYS_preadv,
        SYS_preadv2,
        SYS_prlimit64,
        SYS_process_madvise,
        SYS_process_mrelease,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_pselect6,
        SYS_ptrace,
        SYS_putpmsg,
        SYS_pwrite64,
        SYS_pwritev,
        SYS_pwritev2,
        SYS_quotactl,
        SYS_quotactl_fd,
        SYS_read,
        SYS_readahead,
        SYS_readlink,
        SYS_readlinkat,
        SYS_readv,
        SYS_reboot,
        SYS_recvfrom,
        SYS_recvmmsg,
        SYS_recvmsg,
        SYS_remap_file_pages,
        SYS_removexattr,
        SYS_rename,
        SYS_renameat,
        SYS_renameat2,
        SYS_request_key,
        SYS_restart_syscall,
        SYS_rmdir,
        SYS_rseq,
        SYS_rt_sigaction,
        SYS_rt_sigpending,
        SYS_rt_sigprocmask,
        SYS_rt_sigqueueinfo,
        SYS_rt_sigreturn,
        SYS_rt_sigsuspend,
        SYS_rt_sigtimedwait,
        SYS_rt_tgsigqueueinfo,
        SYS_sched_get_priority_max,
        SYS_sched_get_priority_min,
        SYS_sched_getaffinity,
        SYS_sched_getattr,
        SYS_sched_getparam,
        SYS_sched_getscheduler,
        SYS_sched_rr_get_interval,
        SYS_sched_setaffinity,
        SYS_sched_setattr,
        SYS_sched_setparam,
        SYS_sched_setscheduler,
        SYS_sched_yield,
        SYS_seccomp,
        SYS_security,
        SYS_select,
        SYS_semctl,
        SYS_semget,
        SYS_semop,
        SYS_semtimedop,
        SYS_sendfile,
        SYS_sendmmsg,
        SYS_sendmsg,
        SYS_sendto,
        SYS_set_mempolicy,
        SYS_set_mempolicy_home_node,
        SYS_set_robust_list,
        SYS_set_thread_area,
        SYS_set_tid_address,
        SYS_setdomainname,
        SYS_setfsgid,
        SYS_setfsuid,
        SYS_setgid,
        SYS_setgroups,
        SYS_sethostname,
        SYS_setitimer,
        SYS_setns,
        SYS_setpgid,
        SYS_setpriority,
        SYS_setregid,
        SYS_setresgid,
        SYS_setresuid,
        SYS_setreuid,
        SYS_setrlimit,
        SYS_setsid,
        SYS_setsockopt,
        SYS_settimeofday,
        SYS_setuid,
        SYS_setxattr,
        SYS_shmat,
        SYS_shmctl,
        SYS_shmdt,
        SYS_shmget,
        SYS_shutdown,
        SYS_sigaltstack,
        SYS_signalfd,
        SYS_signalfd4,
        SYS_socket,
        SYS_socketpair,
        SYS_splice,
        SYS_stat,
        SYS_statfs,
        SYS_statx,
        SYS_swapoff,
        SYS_swapon,
        SYS_symlink,
        SYS_symlinkat,
        SYS_sync,
        SYS_sync_file_range,
        SYS_syncfs,
        SYS_sysfs,
        SYS_sysinfo,
        SYS_syslog,
        SYS_tee,
        SYS_tgkill,
        SYS_time,
        SYS_timer_create,
        SYS_timer_delete,
        SYS_timer_getoverrun,
        SYS_timer_gettime,
        SYS_timer_settime,
        SYS_timerfd_create,
        SYS_timerfd_gettime,
        SYS_timerfd_settime,
        SYS_times,
        SYS_tkill,
        SYS_truncate,
        SYS_tuxcall,
        SYS_umask,
        SYS_umount2,
        SYS_uname,
        SYS_unlink,
        SYS_unlinkat,
        SYS_unshare,
        SYS_uselib,
        SYS_userfaultfd,
        SYS_ustat,
        SYS_utime,
        SYS_utimensat,
        SYS_utimes,
        SYS_vfork,
        SYS_vhangup,
        SYS_vmsplice,
        SYS_vserver,
        SYS_wait4,
        SYS_waitid,
        SYS_write,
        SYS_writev,
    );
    assert_eq!(n, 360);
}

/// aarch64 against the kernel's UAPI header of this host, when installed
/// (linux-libc-dev); the table may be newer than the header, not older.
#[test]
fn aarch64_table_agrees_with_installed_uapi_header() {
    let path = "/usr/include/asm-generic/unistd.h";
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!(
            "SKIP aarch64_table_agrees_with_installed_uapi_header: {path} is not installed (apt-get install linux-libc-dev)"
        );
        return;
    };
    let mut checked = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some("#define"), Some(name), Some(value)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let Some(name) = name.strip_prefix("__NR_") else {
            continue;
        };
        let Ok(nr) = value.parse::<u32>() else {
            continue;
        };
        // Entries the 64-bit arm64 ABI does not have, or that only exist as `__NR3264_*`.
        if [
            "syscalls",
            "arch_specific_syscall",
            "nfsservctl",
            "sync_file_range2",
        ]
        .contains(&name)
            || name.ends_with("time64")
        {
            continue;
        }
        // Newer than the tables (Linux 6.19, up to listns = 470).
        if nr > 470 {
            continue;
        }
        assert_eq!(syscall_number(Arch::Aarch64, name), Some(nr), "{name}");
        checked += 1;
    }
    assert!(checked > 200, "only {checked} entries checked");
}

/// Whether tools/data/kafel_names_32.txt gives `name` C Kafel's number on `arch`.
fn kafel_renamed(arch: Arch, name: &str) -> bool {
    let text = include_str!("../tools/data/kafel_names_32.txt");
    text.lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
        })
        .any(|f| f.len() == 3 && f[0] == arch.name() && f[1] == name)
}

#[test]
fn tables_are_sorted_and_complete() {
    for arch in Arch::ALL {
        let all: Vec<_> = syscalls(arch).collect();
        assert!(
            all.windows(2).all(|w| w[0].1 < w[1].1),
            "{arch}: sorted by number"
        );
        for (name, nr) in &all {
            // On i386/arm a few kernel names mean another syscall in C Kafel, and
            // Kafel's meaning wins (tests/arch32.rs checks those).
            if !kafel_renamed(arch, name) {
                assert_eq!(syscall_number(arch, name), Some(*nr), "{arch} {name}");
            }
            assert_eq!(syscall_name(arch, *nr), Some(*name));
        }
        for (name, nr) in kafel::syscall_names(arch) {
            assert_eq!(syscall_number(arch, name), Some(nr));
        }
    }
    assert_eq!(syscalls(Arch::X86_64).count(), 384);
    assert_eq!(syscall_number(Arch::X86_64, "mseal"), Some(462));
    assert_eq!(syscall_number(Arch::Aarch64, "mseal"), Some(462));
    assert_eq!(syscall_number(Arch::Aarch64, "newfstatat"), Some(79));
    assert_eq!(syscall_number(Arch::Aarch64, "fstat"), Some(80));
}

/// Linux 6.13 to 6.19 added these; C Kafel (76d0f41) knows the first seven. Every
/// table has them, with the same number (all four architectures use the generic
/// numbers for syscalls added after 6.1), and the kernel's argument names.
#[test]
fn newer_syscalls_are_in_every_table() {
    let newer = [
        (
            "setxattrat",
            463,
            &["dfd", "pathname", "at_flags", "name", "uargs", "usize"][..],
        ),
        (
            "getxattrat",
            464,
            &["dfd", "pathname", "at_flags", "name", "uargs", "usize"],
        ),
        (
            "listxattrat",
            465,
            &["dfd", "pathname", "at_flags", "list", "size"],
        ),
        (
            "removexattrat",
            466,
            &["dfd", "pathname", "at_flags", "name"],
        ),
        (
            "open_tree_attr",
            467,
            &["dfd", "filename", "flags", "uattr", "usize"],
        ),
        (
            "file_getattr",
            468,
            &["dfd", "filename", "ufattr", "usize", "at_flags"],
        ),
        (
            "file_setattr",
            469,
            &["dfd", "filename", "ufattr", "usize", "at_flags"],
        ),
        ("listns", 470, &["req", "ns_ids", "nr_ns_ids", "flags"]),
    ];
    for arch in Arch::ALL {
        for (name, nr, args) in newer {
            assert_eq!(syscall_number(arch, name), Some(nr), "{arch} {name}");
            assert_eq!(syscall_name(arch, nr), Some(name), "{arch} {nr}");
            let names = kafel::syscall_arg_names(arch, name).expect("named arguments");
            for (i, a) in args.iter().enumerate() {
                let policy = format!("ALLOW {{ {name} {{ {a} == 7 }} }} DEFAULT KILL");
                let p = kafel::parse(
                    &policy,
                    &kafel::CompileOptions {
                        arch,
                        ..Default::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{arch} {policy}: {e}"));
                let kafel::Cond::Cmp { l, .. } = p.rules[0].cond.as_ref().expect("a condition")
                else {
                    panic!("{arch} {policy}: not a comparison");
                };
                assert_eq!(*l, kafel::Val::Arg(i as u8), "{arch} {name} {a}");
                assert!(names.len() > i, "{arch} {name}: {names:?}");
            }
        }
    }
    assert_eq!(syscall_number(Arch::X86_64, "uprobe"), Some(336));
}

#[test]
fn argument_names_come_from_the_kernel_declarations() {
    assert_eq!(
        kafel::syscall_arg_names(Arch::X86_64, "write"),
        Some(vec!["fd", "buf", "count"])
    );
    assert_eq!(
        kafel::syscall_arg_names(Arch::Aarch64, "mmap"),
        Some(vec!["addr", "len", "prot", "flags", "fd", "off"])
    );
    assert_eq!(
        kafel::syscall_arg_names(Arch::X86_64, "getpid"),
        Some(vec![])
    );
    // Not implemented by the kernel any more; C Kafel's table still names it.
    assert_eq!(
        kafel::syscall_arg_names(Arch::X86_64, "_sysctl"),
        Some(vec!["args"])
    );
    assert_eq!(kafel::syscall_arg_names(Arch::X86_64, "tuxcall"), None);
}

#[test]
fn arch_helpers() {
    assert_eq!(Arch::X86_64.audit_arch(), 0xc000_003e);
    assert_eq!(Arch::Aarch64.audit_arch(), 0xc000_00b7);
    assert_eq!(Arch::from_name("x86_64"), Some(Arch::X86_64));
    assert_eq!(Arch::from_name("arm64"), Some(Arch::Aarch64));
    assert_eq!(Arch::from_name("mips"), None);
    let native = if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else if cfg!(target_arch = "x86") {
        Arch::X86
    } else if cfg!(target_arch = "arm") {
        Arch::Arm
    } else {
        Arch::X86_64
    };
    assert_eq!(Arch::native(), native);
    assert_eq!(kafel::CompileOptions::default().arch, native);
    assert!(kafel::CompileOptions::default().include_paths.is_empty());
}
