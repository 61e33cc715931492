//! A small `getopt_long(3)`-compatible scanner and nsjail's option table.
//!
//! Why hand-written instead of clap: nsjail's command line *is* glibc's
//! getopt_long with a permuting scan, and scripts depend on its exact
//! corners: bundled short options with attached values (`-Mo`, `-vt5`),
//! a required argument taken from the next element even when it starts
//! with `-` (`-t -1`), unambiguous prefixes of long options (`--chr /`),
//! non-options anywhere being collected as the command (permutation), `--`
//! ending the scan, and options applied strictly in argv order because
//! `--config` replaces what came before it. clap matches some of these only
//! with per-argument settings, does not do prefix matching the glibc way and
//! reorders nothing the way getopt does; a 150-line scanner states the rules
//! directly and is easy to test against them.
//!
//! Not emulated: `POSIXLY_CORRECT` (which would stop at the first
//! non-option); nsjail is practically always run without it.

use crate::error::ConfigError;

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// A switch.
    No,
    /// Needs a value (`--x=V`, `--x V`, `-xV`, `-x V`).
    Required,
}

/// One command-line option.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Long name without `--`; also the identifier the parser dispatches on.
    pub long: &'static str,
    /// Short letter, if any.
    pub short: Option<char>,
    /// Whether it takes a value.
    pub has_arg: HasArg,
    /// One-line description for the usage text.
    pub help: &'static str,
}

const fn o(long: &'static str, short: Option<char>, help: &'static str) -> OptSpec {
    OptSpec {
        long,
        short,
        has_arg: HasArg::No,
        help,
    }
}

const fn v(long: &'static str, short: Option<char>, help: &'static str) -> OptSpec {
    OptSpec {
        long,
        short,
        has_arg: HasArg::Required,
        help,
    }
}

/// Every option nsjail accepts (§4 of the behaviour spec), plus our
/// `--check`, `--run_report` and `--version`. Descriptions are ours.
///
/// The one source of `--help`, the man page and the shell completions
/// ([`crate::docs`]).
pub const OPTIONS: &[OptSpec] = &[
    o("help", Some('h'), "Print this help to stdout and exit 0"),
    o("version", Some('V'), "(ours) Print the version and the build's features (kernel API strategy, seccomp architectures) to stdout and exit 0"),
    v("mode", Some('M'), "Mode by first letter: l (listen on --port), o (run once, default), e (execve without a supervisor), r (rerun forever)"),
    v("config", Some('C'), "Load a config file (protobuf text format or ProtoJSON) here; it replaces every setting given before it"),
    v("exec_file", Some('x'), "Program to execute (default: argv[0] of the command)"),
    o("execute_fd", None, "Open the program before namespacing and run it with execveat() (it need not exist inside the jail)"),
    v("chroot", Some('c'), "Directory to bind-mount as the jail's / (default: an empty tmpfs)"),
    o("no_pivotroot", None, "Switch root with MS_MOVE+chroot instead of pivot_root (escapable)"),
    o("rw", None, "Mount the chroot directory (or root tmpfs) read-write"),
    v("user", Some('u'), "uid map inside[:outside[:count]] (names or numbers; empty = current uid). Repeatable"),
    v("group", Some('g'), "gid map inside[:outside[:count]] (names or numbers; empty = current gid). Repeatable"),
    v("hostname", Some('H'), "Hostname in the jail's UTS namespace (default: NSJAIL)"),
    v("cwd", Some('D'), "Working directory inside the jail (default: /)"),
    v("port", Some('p'), "TCP port to listen on; implies --mode l (default: 0)"),
    v("bindhost", None, "Address to listen on in listen mode (default: ::)"),
    v("max_conns", None, "Listen mode: maximum concurrent jails (default: 0 = unlimited)"),
    v("max_conns_per_ip", Some('i'), "Listen mode: maximum concurrent jails per remote IP (default: 0 = unlimited)"),
    v("log", Some('l'), "Log to this file (appended). On the command line it wins over a config's log_fd/log_file"),
    v("log_fd", Some('L'), "Log to this file descriptor (default: 2; -1 silences all but the fatal line). On the command line it wins over a config's log_fd/log_file"),
    v("time_limit", Some('t'), "Wall-clock limit per jail in seconds (default: 600, 0 = none)"),
    v("max_cpus", None, "Run the jail on at most this many CPUs (default: 0 = no change)"),
    o("daemon", Some('d'), "Go to the background after start"),
    o("verbose", Some('v'), "Log level DEBUG. On the command line it wins over a config's log_level, and over a config's log_fd: -1 (the log goes to stderr unless -l/-L says where)"),
    o("quiet", Some('q'), "Log level WARNING (wins over a config's log_level)"),
    o("really_quiet", Some('Q'), "Log level FATAL (wins over a config's log_level)"),
    o("keep_env", Some('e'), "Keep nsjail's environment (default: cleared)"),
    v("env", Some('E'), "Environment variable NAME=VALUE, or NAME to copy nsjail's value. Repeatable"),
    o("keep_caps", None, "Keep all capabilities"),
    v("cap", None, "Keep this capability, e.g. CAP_NET_ADMIN. Repeatable"),
    o("silent", None, "Connect the program's fds 0, 1 and 2 to /dev/null"),
    o("stderr_to_null", None, "Connect the program's fd 2 to /dev/null"),
    o("skip_setsid", None, "Don't call setsid() (keeps terminal job control; allows TIOCSTI injection)"),
    v("pass_fd", None, "Keep this fd open in the program (0, 1, 2 always are). Repeatable"),
    o("disable_no_new_privs", None, "Don't set PR_SET_NO_NEW_PRIVS (dangerous)"),
    v("rlimit_as", None, "RLIMIT_AS in MiB, or max|hard, def|soft, inf (default: 4096)"),
    v("rlimit_core", None, "RLIMIT_CORE in MiB, or max|hard, def|soft, inf (default: 0)"),
    v("rlimit_cpu", None, "RLIMIT_CPU in seconds, or max|hard, def|soft, inf (default: 600)"),
    v("rlimit_fsize", None, "RLIMIT_FSIZE in MiB, or max|hard, def|soft, inf (default: 1)"),
    v("rlimit_nofile", None, "RLIMIT_NOFILE, or max|hard, def|soft, inf (default: 32)"),
    v("rlimit_nproc", None, "RLIMIT_NPROC, or max|hard, def|soft, inf (default: soft)"),
    v("rlimit_stack", None, "RLIMIT_STACK in MiB, or max|hard, def|soft, inf (default: soft)"),
    v("rlimit_memlock", None, "RLIMIT_MEMLOCK in KiB, or max|hard, def|soft, inf (default: soft)"),
    v("rlimit_rtprio", None, "RLIMIT_RTPRIO, or max|hard, def|soft, inf (default: soft)"),
    v("rlimit_msgqueue", None, "RLIMIT_MSGQUEUE in bytes, or max|hard, def|soft, inf (default: soft)"),
    o("disable_rlimits", None, "Set no rlimits at all (inherit nsjail's)"),
    o("persona_addr_compat_layout", None, "personality(ADDR_COMPAT_LAYOUT)"),
    o("persona_mmap_page_zero", None, "personality(MMAP_PAGE_ZERO)"),
    o("persona_read_implies_exec", None, "personality(READ_IMPLIES_EXEC)"),
    o("persona_addr_limit_3gb", None, "personality(ADDR_LIMIT_3GB)"),
    o("persona_addr_no_randomize", None, "personality(ADDR_NO_RANDOMIZE)"),
    o("disable_clone_newnet", Some('N'), "No new network namespace (host networking)"),
    o("disable_clone_newuser", None, "No new user namespace (needs root)"),
    o("disable_clone_newns", None, "No new mount namespace"),
    o("disable_clone_newpid", None, "No new PID namespace"),
    o("disable_clone_newipc", None, "No new IPC namespace"),
    o("disable_clone_newuts", None, "No new UTS namespace"),
    o("disable_clone_newcgroup", None, "No new cgroup namespace"),
    o("enable_clone_newtime", None, "New time namespace"),
    v("uid_mapping", Some('U'), "uid map inside:outside:count written with newuidmap. Repeatable"),
    v("gid_mapping", Some('G'), "gid map inside:outside:count written with newgidmap. Repeatable"),
    v("bindmount_ro", Some('R'), "Read-only bind mount src[:dst]. Repeatable"),
    v("bindmount", Some('B'), "Read-write bind mount src[:dst[:options]]. Repeatable"),
    v("tmpfsmount", Some('T'), "tmpfs (read-write, size=4194304) at this path. Repeatable"),
    v("mount", Some('m'), "Any mount src:dst:fstype:options (options may contain ':'). Repeatable"),
    v("symlink", Some('s'), "Symlink src:dst (dst points to src). Repeatable"),
    o("disable_proc", None, "Don't mount /proc"),
    v("proc_path", None, "Mount procfs at this path (default: /proc)"),
    o("proc_rw", None, "Mount procfs read-write"),
    v("experimental_mnt", None, "Mount API for read-only/nosuid/nodev/noexec: auto (default) and new: one recursive mount_setattr(2) where the kernel has it, else mount(2) remounts; old: mount(2) remounts only (nsjail's default)"),
    v("seccomp_policy", Some('P'), "Kafel seccomp policy file"),
    v("seccomp_string", None, "Kafel seccomp policy text (appended, one line per use)"),
    o("seccomp_log", None, "Install the filter with SECCOMP_FILTER_FLAG_LOG"),
    o("seccomp_unotify", None, "Trace file and socket syscalls with a seccomp user-notification filter"),
    v("seccomp_unotify_report", None, "Also write the seccomp_unotify report to this file"),
    v("nice_level", None, "Nice level of the program (default: 19)"),
    v("cgroup_mem_max", None, "Memory limit in bytes (default: 0 = none)"),
    v("cgroup_mem_memsw_max", None, "Memory+swap limit in bytes (default: 0 = none)"),
    v("cgroup_mem_swap_max", None, "Swap limit in bytes (default: -1 = none)"),
    v("cgroup_mem_mount", None, "cgroup v1 memory mount (default: /sys/fs/cgroup/memory)"),
    v("cgroup_mem_parent", None, "Existing cgroup v1 memory parent (default: NSJAIL)"),
    v("cgroup_pids_max", None, "Maximum number of pids (default: 0 = none)"),
    v("cgroup_pids_mount", None, "cgroup v1 pids mount (default: /sys/fs/cgroup/pids)"),
    v("cgroup_pids_parent", None, "Existing cgroup v1 pids parent (default: NSJAIL)"),
    v("cgroup_net_cls_classid", None, "net_cls class id (default: 0 = none)"),
    v("cgroup_net_cls_mount", None, "cgroup v1 net_cls mount (default: /sys/fs/cgroup/net_cls)"),
    v("cgroup_net_cls_parent", None, "Existing cgroup v1 net_cls parent (default: NSJAIL)"),
    v("cgroup_cpu_ms_per_sec", None, "CPU milliseconds per wall-clock second (default: 0 = none)"),
    v("cgroup_cpu_mount", None, "cgroup v1 cpu mount (default: /sys/fs/cgroup/cpu)"),
    v("cgroup_cpu_parent", None, "Existing cgroup v1 cpu parent (default: NSJAIL)"),
    v("cgroupv2_mount", None, "cgroup v2 directory (default: /sys/fs/cgroup)"),
    o("use_cgroupv2", None, "Use cgroup v2"),
    o("detect_cgroupv2", None, "Use cgroup v2 if cgroupv2_mount is a cgroup2 filesystem, else v1"),
    o("iface_no_lo", None, "Don't bring up lo in the jail"),
    v("iface_own", None, "Move this host interface into the jail. Repeatable"),
    v("macvlan_iface", Some('I'), "Clone this host interface as MACVLAN 'vs' in the jail"),
    v("macvlan_vs_ip", None, "IPv4 of 'vs' (default: 192.168.0.2)"),
    v("macvlan_vs_nm", None, "Netmask of 'vs' (default: 255.255.255.0)"),
    v("macvlan_vs_gw", None, "Default gateway via 'vs' (default: 192.168.0.1)"),
    v("macvlan_vs_ma", None, "MAC address of 'vs' (default: chosen by the kernel)"),
    v("macvlan_vs_mo", None, "MACVLAN mode: private, vepa, bridge or passthru (default: private)"),
    o("disable_tsc", None, "Make the rdtsc instruction fault (x86)"),
    o("forward_signals", None, "Forward SIGINT/SIGTERM to the jails instead of SIGKILL"),
    o("use_core_scheduling", None, "Put the jail in its own core-scheduling group"),
    o("user_net", None, "User-mode networking with the built-in NSTUN stack (a TUN device in the jail, NAT in nsjail)"),
    o("use_pasta", None, "User-mode networking with pasta (nsjail 3.5/3.6's flag and user_net schema)"),
    v("oom_score_adj", None, "Write this value to the program's oom_score_adj"),
    o("check", None, "(ours) Validate the config and flags, print the effective jail and warnings, run nothing"),
    v("run_report", None, "(ours) Write a JSON account of each run to this file"),
    o("allow_bind_symlinks", None, "(ours) Let a bind source's path cross a symlink that lies inside a read-write bind source of the same jail (refused by default: the jail could have planted it)"),
    o("allow_vsock", None, "(ours) Let a jail with its own network namespace create AF_VSOCK sockets (denied with EAFNOSUPPORT by default: vsock reaches the host's socket space across namespaces)"),
];

/// The short-option letters in nsjail's getopt string that take a value.
const SHORT_WITH_ARG: &str = "xHDCcpiuglLtMERBTmsPIUG";
/// The ones that don't (`?` is in nsjail's string too; see [`ConfigError::QuestionMark`]).
const SHORT_NO_ARG: &str = "NdvqQehV?";

/// Finds an option by short letter.
pub fn by_short(c: char) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|s| s.short == Some(c))
}

/// Finds an option by exact long name.
pub fn by_long(name: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|s| s.long == name)
}

/// One parsed option occurrence.
#[derive(Debug, Clone)]
pub struct OptEvent {
    /// The option.
    pub spec: &'static OptSpec,
    /// Its value, for options that take one.
    pub value: Option<String>,
}

/// A permuting getopt_long scan over the arguments (argv without `argv[0]`).
pub struct Getopt {
    args: Vec<String>,
    /// Index of the next argv element to look at.
    next: usize,
    /// Inside a short-option cluster: (element index, byte offset of the next letter).
    cluster: Option<(usize, usize)>,
    /// Non-options seen so far, then everything after `--`.
    operands: Vec<String>,
    done: bool,
}

impl Getopt {
    /// Starts a scan. Arguments must already be UTF-8.
    pub fn new(args: Vec<String>) -> Getopt {
        Getopt {
            args,
            next: 0,
            cluster: None,
            operands: Vec::new(),
            done: false,
        }
    }

    /// The command: non-options in order, then everything after `--`.
    /// Complete only after [`Getopt::next_opt`] returned `Ok(None)`.
    pub fn into_operands(self) -> Vec<String> {
        self.operands
    }

    /// The next option, `Ok(None)` at the end, or a getopt error.
    pub fn next_opt(&mut self) -> Result<Option<OptEvent>, ConfigError> {
        if let Some((idx, off)) = self.cluster.take() {
            return self.short_at(idx, off).map(Some);
        }
        while !self.done {
            let Some(arg) = self.args.get(self.next).cloned() else {
                self.done = true;
                break;
            };
            self.next += 1;
            if arg == "--" {
                self.operands.extend(self.args.drain(self.next..));
                self.done = true;
                break;
            }
            if let Some(body) = arg.strip_prefix("--") {
                return self.long(&arg, body).map(Some);
            }
            if arg.len() > 1 && arg.starts_with('-') {
                return self.short_at(self.next - 1, 1).map(Some);
            }
            self.operands.push(arg);
        }
        Ok(None)
    }

    fn take_next_arg(&mut self, opt: String) -> Result<String, ConfigError> {
        match self.args.get(self.next) {
            Some(v) => {
                let v = v.clone();
                self.next += 1;
                Ok(v)
            }
            None => Err(ConfigError::MissingArgument { opt }),
        }
    }

    fn long(&mut self, arg: &str, body: &str) -> Result<OptEvent, ConfigError> {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let spec = if name.is_empty() {
            None
        } else if let Some(s) = by_long(name) {
            Some(s)
        } else {
            let matches: Vec<&'static OptSpec> = OPTIONS
                .iter()
                .filter(|s| s.long.starts_with(name))
                .collect();
            if matches.len() > 1 {
                return Err(ConfigError::AmbiguousOption {
                    arg: format!("--{name}"),
                    candidates: matches
                        .iter()
                        .map(|s| format!("'--{}'", s.long))
                        .collect::<Vec<_>>()
                        .join(" "),
                });
            }
            matches.first().copied()
        };
        let Some(spec) = spec else {
            return Err(ConfigError::UnknownOption {
                arg: arg.split('=').next().unwrap_or(arg).to_string(),
            });
        };
        let opt = format!("--{}", spec.long);
        let value = match (spec.has_arg, inline) {
            (HasArg::No, Some(_)) => return Err(ConfigError::UnexpectedArgument { opt }),
            (HasArg::No, None) => None,
            (HasArg::Required, Some(v)) => Some(v),
            (HasArg::Required, None) => Some(self.take_next_arg(opt)?),
        };
        Ok(OptEvent { spec, value })
    }

    fn short_at(&mut self, idx: usize, off: usize) -> Result<OptEvent, ConfigError> {
        let arg = self.args[idx].clone();
        let rest = &arg[off..];
        let Some(c) = rest.chars().next() else {
            // Only reachable through a malformed cluster state; treat as end of cluster.
            return self
                .next_opt()
                .and_then(|o| o.ok_or(ConfigError::NoCommand));
        };
        let after = off + c.len_utf8();
        if c == '?' {
            return Err(ConfigError::QuestionMark);
        }
        let spec = match by_short(c) {
            Some(s) if SHORT_WITH_ARG.contains(c) || SHORT_NO_ARG.contains(c) => s,
            _ => return Err(ConfigError::InvalidShortOption { letter: c }),
        };
        match spec.has_arg {
            HasArg::No => {
                if after < arg.len() {
                    self.cluster = Some((idx, after));
                }
                Ok(OptEvent { spec, value: None })
            }
            HasArg::Required => {
                let value = if after < arg.len() {
                    arg[after..].to_string()
                } else {
                    self.take_next_arg(format!("-{c}"))?
                };
                Ok(OptEvent {
                    spec,
                    value: Some(value),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Scanned = (Vec<(String, Option<String>)>, Vec<String>);

    fn scan(args: &[&str]) -> Result<Scanned, ConfigError> {
        let mut g = Getopt::new(args.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        while let Some(e) = g.next_opt()? {
            out.push((e.spec.long.to_string(), e.value));
        }
        Ok((out, g.into_operands()))
    }

    fn ev(l: &str, v: Option<&str>) -> (String, Option<String>) {
        (l.to_string(), v.map(str::to_string))
    }

    #[test]
    fn table_is_consistent() {
        let mut longs: Vec<_> = OPTIONS.iter().map(|s| s.long).collect();
        longs.sort();
        longs.dedup();
        assert_eq!(longs.len(), OPTIONS.len(), "duplicate long option");
        // nsjail's 104 long options plus --check, --run_report, --version,
        // --allow_vsock, --allow_bind_symlinks and 3.5/3.6's --use_pasta.
        assert_eq!(OPTIONS.len(), 110);
        for c in SHORT_WITH_ARG.chars() {
            assert_eq!(by_short(c).unwrap().has_arg, HasArg::Required, "-{c}");
        }
        for c in SHORT_NO_ARG.chars().filter(|c| *c != '?') {
            assert_eq!(by_short(c).unwrap().has_arg, HasArg::No, "-{c}");
        }
        let shorts = OPTIONS.iter().filter(|s| s.short.is_some()).count();
        assert_eq!(shorts, SHORT_WITH_ARG.len() + SHORT_NO_ARG.len() - 1);
    }

    #[test]
    fn bundles_and_attached_values() {
        let (e, ops) = scan(&["-Mo", "-vt5", "-dNe", "-Ml", "--", "/bin/true"]).unwrap();
        assert_eq!(
            e,
            vec![
                ev("mode", Some("o")),
                ev("verbose", None),
                ev("time_limit", Some("5")),
                ev("daemon", None),
                ev("disable_clone_newnet", None),
                ev("keep_env", None),
                ev("mode", Some("l")),
            ]
        );
        assert_eq!(ops, vec!["/bin/true"]);
    }

    #[test]
    fn long_forms() {
        let (e, _) = scan(&["--time_limit=7", "--hostname", "h", "--chr", "/", "--rw"]).unwrap();
        assert_eq!(
            e,
            vec![
                ev("time_limit", Some("7")),
                ev("hostname", Some("h")),
                ev("chroot", Some("/")),
                ev("rw", None),
            ]
        );
        // An exact name wins over longer names it prefixes.
        let (e, _) = scan(&["--user", "0", "--log", "f"]).unwrap();
        assert_eq!(e, vec![ev("user", Some("0")), ev("log", Some("f"))]);
    }

    #[test]
    fn values_may_start_with_dash() {
        let (e, _) = scan(&["-t", "-1", "--nice_level", "-5", "-E", "--"]).unwrap();
        assert_eq!(
            e,
            vec![
                ev("time_limit", Some("-1")),
                ev("nice_level", Some("-5")),
                ev("env", Some("--")),
            ]
        );
    }

    #[test]
    fn permutes_operands() {
        let (e, ops) = scan(&["/bin/echo", "-v", "a", "--", "-x", "--rw"]).unwrap();
        assert_eq!(e, vec![ev("verbose", None)]);
        assert_eq!(ops, vec!["/bin/echo", "a", "-x", "--rw"]);
        let (_, ops) = scan(&["-", "x"]).unwrap();
        assert_eq!(ops, vec!["-", "x"]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            scan(&["--use_slirp"]),
            Err(ConfigError::UnknownOption { arg }) if arg == "--use_slirp"
        ));
        assert!(matches!(
            scan(&["-z"]),
            Err(ConfigError::InvalidShortOption { letter: 'z' })
        ));
        assert!(matches!(
            scan(&["--cgroup_mem"]),
            Err(ConfigError::AmbiguousOption { .. })
        ));
        assert!(matches!(
            scan(&["-t"]),
            Err(ConfigError::MissingArgument { opt }) if opt == "-t"
        ));
        assert!(matches!(
            scan(&["--chroot"]),
            Err(ConfigError::MissingArgument { opt }) if opt == "--chroot"
        ));
        assert!(matches!(
            scan(&["--rw=1"]),
            Err(ConfigError::UnexpectedArgument { .. })
        ));
        assert!(matches!(scan(&["-?"]), Err(ConfigError::QuestionMark)));
        assert!(matches!(scan(&["--"]), Ok((_, ops)) if ops.is_empty()));
        assert!(matches!(
            scan(&["--=x"]),
            Err(ConfigError::UnknownOption { .. })
        ));
        // Long-only options have no short letter.
        assert!(matches!(
            scan(&["-X"]),
            Err(ConfigError::InvalidShortOption { letter: 'X' })
        ));
    }
}
