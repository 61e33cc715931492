//! `--check` (ours): the effective jail in readable form and the warnings
//! for the traps nsjail users fall into. The same warnings are meant to be
//! logged at WARNING level when a jail starts.

use std::path::{Path, PathBuf};

use crate::proto::config::{Mode, MountPt, NsJailConfig, RLimit};
use crate::rlimit::{
    human_bytes, jail_rlimit_plan, rlimit_field_values, RlimitValue, RLIMIT_FIELDS,
};
use crate::values::cap_from_name;
use crate::Jail;

/// `CGROUP2_SUPER_MAGIC` from linux/magic.h.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Facts about the host that the warnings depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The directory probed as the cgroup v2 mount.
    pub cgroupv2_mount: PathBuf,
    /// Whether that directory is a cgroup2 filesystem.
    pub cgroupv2_is_cgroup2: bool,
    /// Controllers listed in its `cgroup.controllers` (None if unreadable).
    pub cgroupv2_controllers: Option<Vec<String>>,
    /// cgroup v1 parent directories (`<mount>/<parent>`) that were checked
    /// and do not exist (only filled by [`HostFacts::probe_for`]).
    pub missing_v1_parents: Vec<PathBuf>,
    /// nsjail's current (soft, hard) rlimits by name ("RLIMIT_NPROC").
    pub rlimits: Vec<(&'static str, u64, u64)>,
}

impl HostFacts {
    /// Probes the default cgroup v2 mount (`/sys/fs/cgroup`) and the rlimits.
    pub fn probe() -> HostFacts {
        Self::probe_at(Path::new("/sys/fs/cgroup"))
    }

    /// Probes what matters for this config: its `cgroupv2_mount`, and the
    /// cgroup v1 parent directories of the limits it sets.
    pub fn probe_for(cfg: &NsJailConfig) -> HostFacts {
        let mut h = Self::probe_at(Path::new(cfg.cgroupv2_mount()));
        if !cfg.use_cgroupv2() && !cfg.detect_cgroupv2() {
            for (mount, parent) in v1_parents(cfg) {
                let p = Path::new(mount).join(parent);
                if !p.is_dir() {
                    h.missing_v1_parents.push(p);
                }
            }
        }
        h
    }

    /// Probes `mount` as the cgroup v2 directory.
    pub fn probe_at(mount: &Path) -> HostFacts {
        // f_type's width differs between architectures, hence the cast.
        #[allow(clippy::unnecessary_cast)]
        let is_cgroup2 = rustix::fs::statfs(mount)
            .map(|s| s.f_type as i64 == CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        let controllers = std::fs::read_to_string(mount.join("cgroup.controllers"))
            .ok()
            .map(|s| s.split_whitespace().map(str::to_string).collect());
        HostFacts {
            cgroupv2_mount: mount.to_path_buf(),
            cgroupv2_is_cgroup2: is_cgroup2,
            cgroupv2_controllers: controllers,
            missing_v1_parents: Vec::new(),
            rlimits: current_rlimits(),
        }
    }

    fn rlimit(&self, name: &str) -> Option<(u64, u64)> {
        self.rlimits
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(_, s, h)| (s, h))
    }
}

pub(crate) fn current_rlimits() -> Vec<(&'static str, u64, u64)> {
    use rustix::process::{getrlimit, Resource};
    let all = [
        ("RLIMIT_AS", Resource::As),
        ("RLIMIT_CORE", Resource::Core),
        ("RLIMIT_CPU", Resource::Cpu),
        ("RLIMIT_FSIZE", Resource::Fsize),
        ("RLIMIT_NOFILE", Resource::Nofile),
        ("RLIMIT_NPROC", Resource::Nproc),
        ("RLIMIT_STACK", Resource::Stack),
        ("RLIMIT_MEMLOCK", Resource::Memlock),
        ("RLIMIT_RTPRIO", Resource::Rtprio),
        ("RLIMIT_MSGQUEUE", Resource::Msgqueue),
    ];
    // rustix says "unlimited" as None; the kernel's value is RLIM64_INFINITY.
    let v = |x: Option<u64>| x.unwrap_or(libc::RLIM64_INFINITY);
    all.iter()
        .map(|(n, r)| {
            let l = getrlimit(*r);
            (*n, v(l.current), v(l.maximum))
        })
        .collect()
}

/// The (mount, parent) of each cgroup v1 controller the config uses.
fn v1_parents(cfg: &NsJailConfig) -> Vec<(&str, &str)> {
    let mut v = Vec::new();
    if cfg.cgroup_mem_max() > 0 || cfg.cgroup_mem_memsw_max() > 0 || cfg.cgroup_mem_swap_max() >= 0
    {
        v.push((cfg.cgroup_mem_mount(), cfg.cgroup_mem_parent()));
    }
    if cfg.cgroup_pids_max() > 0 {
        v.push((cfg.cgroup_pids_mount(), cfg.cgroup_pids_parent()));
    }
    if cfg.cgroup_net_cls_classid() > 0 {
        v.push((cfg.cgroup_net_cls_mount(), cfg.cgroup_net_cls_parent()));
    }
    if cfg.cgroup_cpu_ms_per_sec() > 0 {
        v.push((cfg.cgroup_cpu_mount(), cfg.cgroup_cpu_parent()));
    }
    v
}

/// cgroup v2 controllers the config's limits need.
fn needed_v2_controllers(cfg: &NsJailConfig) -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg.cgroup_mem_max() > 0 || cfg.cgroup_mem_memsw_max() > 0 || cfg.cgroup_mem_swap_max() >= 0
    {
        v.push("memory");
    }
    if cfg.cgroup_pids_max() > 0 {
        v.push("pids");
    }
    if cfg.cgroup_cpu_ms_per_sec() > 0 {
        v.push("cpu");
    }
    v
}

/// Why `use_cgroupv2` cannot be honoured on this host (this binary then
/// falls back to v1), when the probed mount is the configured one.
enum V2Shortfall {
    /// The mount is not a cgroup2 filesystem.
    NotCgroup2,
    /// These controllers the limits need are not offered there.
    Missing(Vec<&'static str>),
}

fn v2_shortfall(cfg: &NsJailConfig, host: &HostFacts) -> Option<V2Shortfall> {
    if host.cgroupv2_mount != Path::new(cfg.cgroupv2_mount()) {
        return None;
    }
    if !host.cgroupv2_is_cgroup2 {
        return Some(V2Shortfall::NotCgroup2);
    }
    let have = host.cgroupv2_controllers.clone().unwrap_or_default();
    let missing: Vec<&str> = needed_v2_controllers(cfg)
        .into_iter()
        .filter(|c| !have.iter().any(|h| h == c))
        .collect();
    (!missing.is_empty()).then_some(V2Shortfall::Missing(missing))
}

fn origin(jail: &Jail, field: &str) -> String {
    jail.origins
        .get(field)
        .map(|o| format!(" ({o})"))
        .unwrap_or_default()
}

/// Values at or above this many bytes (1 TiB) in a MiB/KiB rlimit field
/// look like a byte count written where MiB/KiB are meant.
const SUSPICIOUS_BYTES: u64 = 1 << 40;

/// The warnings for the traps users fall into, one line each, plus the
/// warnings collected while parsing (discarded flags, unset envars).
pub fn trap_warnings(jail: &Jail, host: &HostFacts) -> Vec<String> {
    let cfg = &jail.cfg;
    let mut w = jail.warnings.clone();

    // -Me execs in place: the program stays in the host's PID namespace, and
    // signalling needs only the same host uid. As host root it can kill
    // every root process on the host.
    if cfg.mode() == Mode::EXECVE {
        let host_uid = cfg.uidmap.first().map(|m| {
            if cfg.clone_newuser() {
                m.outside_id()
            } else {
                m.inside_id()
            }
        });
        if host_uid == Some("0") {
            w.push("mode EXECVE (-Me): the program stays in the host's PID namespace and runs as host uid 0, so it can signal (kill) every root process on the host; -Me can map only nsjail's own uid into its user namespace, so start nsjail as an unprivileged user, or as root with --disable_clone_newuser -u 65534 -g 65534, or use -Mo".to_string());
        }
    }

    if !cfg.disable_rl() {
        for f in RLIMIT_FIELDS.iter() {
            let (v, has_v, t, _) = rlimit_field_values(cfg, f.field);
            if t == RLimit::VALUE && f.mul > 1 && v.saturating_mul(f.mul) >= SUSPICIOUS_BYTES {
                let meant = v.div_ceil(f.mul).max(1);
                let bytes = v.saturating_mul(f.mul);
                let limit = if bytes > crate::rlimit::RLIMIT_MAX_MEANINGFUL {
                    "above 2^63-1 bytes, which the kernel would read as negative, so it is set as RLIM_INFINITY: no limit at all".to_string()
                } else {
                    format!("{}, which is no limit at all", human_bytes(bytes))
                };
                w.push(format!(
                    "{}: {v}{} is in {}, so the limit is {limit}; if {v} was meant as bytes, write {}: {meant}",
                    f.field,
                    origin(jail, f.field),
                    f.unit,
                    f.field
                ));
            } else if t == RLimit::VALUE && v > crate::rlimit::RLIMIT_MAX_MEANINGFUL {
                w.push(format!(
                    "{}: {v}{} is above 2^63-1, which the kernel would read as negative, so it is set as RLIM_INFINITY: no limit at all",
                    f.field,
                    origin(jail, f.field),
                ));
            }
            if has_v && t != RLimit::VALUE {
                let inherited = match (host.rlimit(f.name), t) {
                    (Some((s, _)), RLimit::SOFT) => format!(" (currently {})", show_raw(s)),
                    (Some((_, h)), RLimit::HARD) => format!(" (currently {})", show_raw(h)),
                    _ => String::new(),
                };
                let what = match t {
                    RLimit::SOFT => format!("nsjail's own soft limit{inherited}"),
                    RLimit::HARD => format!("nsjail's own hard limit{inherited}"),
                    _ => "no limit (infinity)".to_string(),
                };
                w.push(format!(
                    "{}: {v}{} is ignored because {}_type is {:?}{}; the jail gets {what}. Add {}_type: VALUE to enforce {v}",
                    f.field,
                    origin(jail, f.field),
                    f.field,
                    t,
                    if jail.origins.contains_key(&format!("{}_type", f.field)) {
                        ""
                    } else {
                        " (its default)"
                    },
                    f.field
                ));
            }
        }
        let (_, _, nproc_t, _) = rlimit_field_values(cfg, "rlimit_nproc");
        if nproc_t == RLimit::VALUE
            && cfg.clone_newuser()
            && cfg.uidmap.first().is_some_and(|m| m.outside_id() == "0")
        {
            w.push("rlimit_nproc is not enforced: the jail's uid maps to host uid 0, which the kernel exempts from RLIMIT_NPROC; map to an unprivileged uid (e.g. -u 0:65534) or use cgroup_pids_max".to_string());
        }
    }

    if cfg.has_log_fd() && cfg.log_fd() == -1 {
        w.push(format!(
            "log_fd: -1{} discards every message of this nsjail except the one fatal line, which still goes to stderr (nsjail would exit 255 with no explanation at all); remove log_fd or use log_file to keep the log",
            origin(jail, "log_fd")
        ));
    }

    let uses_v2 = cfg.use_cgroupv2() && !cfg.detect_cgroupv2();
    if uses_v2 {
        let mount = cfg.cgroupv2_mount();
        match v2_shortfall(cfg, host) {
            Some(V2Shortfall::NotCgroup2) => w.push(format!(
                "use_cgroupv2: true{} but {mount} is not a cgroup v2 filesystem on this host: this nsjail falls back to cgroup v1 with one warning at start, or exits 255 naming the limit if v1 cannot give it either (nsjail would exit 255 at start); use detect_cgroupv2: true to say so, or drop use_cgroupv2",
                origin(jail, "use_cgroupv2")
            )),
            Some(V2Shortfall::Missing(missing)) => w.push(format!(
                "use_cgroupv2: true{} but the {} controller(s) the limits need are not available in {mount}/cgroup.controllers: this nsjail falls back to cgroup v1 with one warning at start, or exits 255 naming the limit if v1 cannot give it either (nsjail would fail at start); enable them for this cgroup or drop the matching cgroup_* limits",
                origin(jail, "use_cgroupv2"),
                missing.join(", ")
            )),
            None => {}
        }
        if cfg.cgroup_net_cls_classid() > 0 {
            w.push("cgroup_net_cls_classid is only applied with cgroup v1; with use_cgroupv2 it is ignored".to_string());
        }
    }
    for p in &host.missing_v1_parents {
        w.push(format!(
            "cgroup v1 parent {} does not exist: this nsjail creates it at start (mode 0701) and the last run using it removes it again, if its controller hierarchy is mounted (nsjail would exit 255 when the jail starts); create it yourself to keep it",
            p.display()
        ));
    }

    if jail.cli_command
        && jail
            .origins
            .get("exec_bin")
            .is_some_and(|o| o.starts_with("config"))
        && jail.argv.first().map(String::as_str) != Some(cfg.exec_bin.path())
    {
        w.push(format!(
            "the config's exec_bin.path '{}' is executed with the command line's argv {:?} (nsjail replaces argv only); to run '{}' instead, remove exec_bin from the config",
            cfg.exec_bin.path(),
            jail.argv,
            jail.argv.first().map(String::as_str).unwrap_or("")
        ));
    }

    for (i, c) in cfg.cap.iter().enumerate() {
        if cap_from_name(c).is_none() {
            w.push(format!(
                "cap[{i}] '{c}' is not a capability name; it is skipped with a warning at start; use a name like CAP_NET_ADMIN"
            ));
        }
    }

    let proc_mounted = cfg
        .mount
        .iter()
        .any(|m| m.fstype() == "proc" && crate::spec::mount::normalize_dst(m.dst()) == "/proc");
    if cfg.clone_newns()
        && !cfg.mount_proc()
        && !proc_mounted
        && cfg
            .mount
            .iter()
            .any(|m| m.is_bind() && m.dst() == "/" && m.src() == "/")
    {
        w.push("/ is bind-mounted and /proc is not mounted: the host's /proc is visible inside the jail; add mount_proc: true (or drop --disable_proc)".to_string());
    }

    if !cfg.clone_newnet() {
        w.push(format!(
            "clone_newnet: false{}: the jail shares the host's network namespace: it can reach every network and loopback service the host can, and bind host ports (nsjail#163); remove it (the jail then gets its own network with only lo)",
            origin(jail, "clone_newnet")
        ));
    }

    // Raising a hard limit needs CAP_SYS_RESOURCE in the host's user
    // namespace: not as an unprivileged user, and not from inside a new
    // user namespace (where the child sets its limits), even as root.
    if !cfg.disable_rl() {
        let can_raise = rustix::process::geteuid().is_root() && !cfg.clone_newuser();
        for set in crate::rlimit::jail_rlimit_plan(jail) {
            let (Some((_, hard)), crate::rlimit::RlimitValue::Value(v)) =
                (host.rlimit(set.name), set.value)
            else {
                continue;
            };
            if v > hard && !can_raise {
                w.push(format!(
                    "{}: {} is above the hard limit this nsjail inherits ({}): the jail fails to start (setrlimit EPERM: raising a hard limit needs CAP_SYS_RESOURCE in the host{}); ask for at most {}, or raise the hard limit before starting nsjail",
                    set.name,
                    show_raw(v),
                    show_raw(hard),
                    if rustix::process::geteuid().is_root() { ", which a process in a new user namespace lacks" } else { "" },
                    show_raw(hard)
                ));
            }
        }
    }

    w
}

fn show_raw(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// One-line description of a mount entry.
pub fn describe_mount(m: &MountPt) -> String {
    let mut s = if m.is_symlink() {
        format!("symlink '{}' -> '{}'", m.dst(), m.src())
    } else if !m.src_content().is_empty() {
        format!(
            "'{}' <- {} bytes of content",
            m.dst(),
            m.src_content().len()
        )
    } else {
        let src = if m.src().is_empty() { "none" } else { m.src() };
        format!("'{src}' -> '{}'", m.dst())
    };
    let mut flags: Vec<String> = Vec::new();
    if !m.fstype().is_empty() {
        flags.push(format!("type:{}", m.fstype()));
    }
    if m.is_bind() {
        flags.push("bind".into());
    }
    if !m.is_symlink() {
        flags.push(if m.rw() { "rw" } else { "ro" }.into());
    }
    if !m.options().is_empty() {
        flags.push(format!("options:'{}'", m.options()));
    }
    for (on, name) in [
        (m.nosuid(), "nosuid"),
        (m.nodev(), "nodev"),
        (m.noexec(), "noexec"),
    ] {
        if on {
            flags.push(name.into());
        }
    }
    if m.has_is_dir() {
        flags.push(format!("dir:{}", m.is_dir()));
    }
    if !m.prefix_src_env().is_empty() {
        flags.push(format!("src prefixed by ${}", m.prefix_src_env()));
    }
    if !m.prefix_dst_env().is_empty() {
        flags.push(format!("dst prefixed by ${}", m.prefix_dst_env()));
    }
    if !m.mandatory() {
        flags.push("optional".into());
    }
    s.push_str(&format!(" [{}]", flags.join(" ")));
    s
}

fn show_rlimit(v: RlimitValue, kernel_unit: &str, host: &HostFacts, name: &str) -> String {
    match v {
        RlimitValue::Value(x) if kernel_unit == "bytes" && x < 1024 => format!("{x} bytes"),
        RlimitValue::Value(x) if kernel_unit == "bytes" => {
            format!("{} ({x} bytes)", human_bytes(x))
        }
        RlimitValue::Value(x) if kernel_unit == "s" => format!("{x} s"),
        RlimitValue::Value(x) => x.to_string(),
        RlimitValue::Inf => "unlimited".to_string(),
        RlimitValue::Soft => match host.rlimit(name) {
            Some((s, _)) => format!("nsjail's soft limit (now {})", show_raw(s)),
            None => "nsjail's soft limit".to_string(),
        },
        RlimitValue::Hard => match host.rlimit(name) {
            Some((_, h)) => format!("nsjail's hard limit (now {})", show_raw(h)),
            None => "nsjail's hard limit".to_string(),
        },
    }
}

/// The `--check` report: effective namespaces, mounts in order, id maps,
/// every rlimit in real units with its source, cgroup limits, the seccomp
/// rule count, then the warnings.
pub fn check_report(
    jail: &Jail,
    host: &HostFacts,
    seccomp_rule_count: Option<usize>,
    extra_warnings: &[String],
) -> String {
    let cfg = &jail.cfg;
    let mut r = String::new();
    let mut line = |s: String| {
        r.push_str(&s);
        r.push('\n');
    };
    line("nsjail --check: the configuration is valid".into());
    if jail.config_files.is_empty() {
        line("config files: none (command line only)".into());
    } else {
        let files: Vec<String> = jail
            .config_files
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        line(format!("config files: {}", files.join(", ")));
    }
    line(format!("mode: {:?}", cfg.mode()));
    if cfg.exec_bin.path().is_empty() {
        line("program: none given: the configuration is checked without one, but a run needs a command (nsjail --config FILE -- /path/to/program args)".into());
    } else {
        line(format!(
            "program: '{}'{} argv: {:?}",
            cfg.exec_bin.path(),
            if cfg.exec_bin.exec_fd() {
                " (via execveat)"
            } else {
                ""
            },
            jail.argv
        ));
    }
    let ns = [
        (cfg.clone_newuser(), "user"),
        (cfg.clone_newns(), "mount"),
        (cfg.clone_newpid(), "pid"),
        (cfg.clone_newipc(), "ipc"),
        (cfg.clone_newuts(), "uts"),
        (cfg.clone_newnet(), "net"),
        (cfg.clone_newcgroup(), "cgroup"),
        (cfg.clone_newtime(), "time"),
    ];
    let on: Vec<&str> = ns.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
    let off: Vec<&str> = ns.iter().filter(|(b, _)| !*b).map(|(_, n)| *n).collect();
    line(format!(
        "namespaces: {} (not created: {})",
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(" ")
        },
        if off.is_empty() {
            "none".to_string()
        } else {
            off.join(" ")
        }
    ));
    line(format!(
        "hostname: '{}', cwd: '{}', time_limit: {} s, nice_level: {}, max_cpus: {}",
        cfg.hostname(),
        cfg.cwd(),
        cfg.time_limit(),
        cfg.nice_level(),
        cfg.max_cpus()
    ));
    line(format!(
        "environment: {} ({} variables set{})",
        if cfg.keep_env() { "kept" } else { "cleared" },
        cfg.envar.len(),
        if cfg.envar.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                cfg.envar
                    .iter()
                    .map(|e| e.split('=').next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    ));
    line(format!(
        "capabilities: {}",
        if cfg.keep_caps() {
            "all kept".to_string()
        } else if cfg.cap.is_empty() {
            "all dropped".to_string()
        } else {
            format!("only {}", cfg.cap.join(" "))
        }
    ));
    line(format!(
        "root: {} ({}), mount API: {:?}",
        match &jail.chroot {
            Some(c) => format!("bind of '{c}'"),
            None => "empty tmpfs".to_string(),
        },
        if jail.root_rw { "rw" } else { "ro" },
        jail.mount_api
    ));
    line(format!("mounts, in order ({}):", cfg.mount.len()));
    for (i, m) in cfg.mount.iter().enumerate() {
        line(format!("  {:>2}. {}", i + 1, describe_mount(m)));
    }
    for (what, maps) in [("uid", &cfg.uidmap), ("gid", &cfg.gidmap)] {
        for m in maps.iter() {
            line(format!(
                "{what} map: inside {} -> outside {} count {}{}",
                m.inside_id(),
                m.outside_id(),
                m.count(),
                if m.use_newidmap() {
                    " (new{what}map)"
                } else {
                    ""
                }
            ));
        }
    }
    if cfg.disable_rl() {
        line("rlimits: not set (disable_rl: the jail inherits nsjail's limits)".into());
    } else {
        line("rlimits (soft = hard):".into());
        let plan = jail_rlimit_plan(jail);
        for (s, f) in plan.iter().zip(RLIMIT_FIELDS.iter()) {
            line(format!(
                "  {:<16} {}  [{}]",
                s.name,
                show_rlimit(s.value, f.kernel_unit, host, s.name),
                s.source
            ));
        }
    }
    let v2 = cfg.use_cgroupv2() || cfg.detect_cgroupv2();
    let mut cg = Vec::new();
    if cfg.cgroup_mem_max() > 0 {
        cg.push(format!("memory {}", human_bytes(cfg.cgroup_mem_max())));
    }
    if cfg.cgroup_mem_memsw_max() > 0 {
        cg.push(format!(
            "memory+swap {}",
            human_bytes(cfg.cgroup_mem_memsw_max())
        ));
    }
    if cfg.cgroup_mem_swap_max() >= 0 {
        cg.push(format!(
            "swap {}",
            human_bytes(cfg.cgroup_mem_swap_max() as u64)
        ));
    }
    if cfg.cgroup_pids_max() > 0 {
        cg.push(format!("pids {}", cfg.cgroup_pids_max()));
    }
    if cfg.cgroup_cpu_ms_per_sec() > 0 {
        cg.push(format!("cpu {} ms/s", cfg.cgroup_cpu_ms_per_sec()));
    }
    if cfg.cgroup_net_cls_classid() > 0 {
        cg.push(format!(
            "net_cls classid {:#x}",
            cfg.cgroup_net_cls_classid()
        ));
    }
    let version = if cfg.detect_cgroupv2() {
        format!(
            "v2 if {} is cgroup2, else v1 (detect_cgroupv2)",
            cfg.cgroupv2_mount()
        )
    } else if v2 {
        let mount = cfg.cgroupv2_mount();
        match v2_shortfall(cfg, host) {
            Some(V2Shortfall::NotCgroup2) => {
                format!("v1 on this host: {mount} is not cgroup v2, so use_cgroupv2 falls back")
            }
            Some(V2Shortfall::Missing(missing)) => format!(
                "v1 on this host: {mount} lacks the {} controller(s), so use_cgroupv2 falls back",
                missing.join(", ")
            ),
            None => format!("v2 at {mount}"),
        }
    } else {
        "v1".to_string()
    };
    if cg.is_empty() {
        line("cgroup limits: none".into());
    } else {
        line(format!("cgroup limits ({version}): {}", cg.join(", ")));
    }
    let seccomp_src = if cfg.has_seccomp_policy_file() {
        format!("policy file '{}'", cfg.seccomp_policy_file())
    } else if !cfg.seccomp_string.is_empty() {
        format!("seccomp_string, {} lines", cfg.seccomp_string.len())
    } else {
        "none".to_string()
    };
    match seccomp_rule_count {
        Some(n) => line(format!("seccomp: {seccomp_src}, {n} rules")),
        None => line(format!("seccomp: {seccomp_src}")),
    }
    line(format!(
        "logging: {}, level {:?}",
        if cfg.has_log_file() {
            format!("file '{}'", cfg.log_file())
        } else {
            format!("fd {}", cfg.log_fd())
        },
        cfg.log_level()
    ));
    // The effective user network (the lowering's own view of it; a config
    // that reaches this report lowered without error).
    match crate::spec::usernet::lower(cfg) {
        Ok(Some(u)) => {
            for l in u.describe() {
                line(l);
            }
        }
        Ok(None) => line("user network: none".into()),
        Err(e) => line(format!("user network: invalid ({e})")),
    }
    let mut warnings = trap_warnings(jail, host);
    warnings.extend_from_slice(extra_warnings);
    if warnings.is_empty() {
        line("warnings: none".into());
    } else {
        line(format!("warnings ({}):", warnings.len()));
        for w in warnings {
            line(format!("  WARNING: {w}"));
        }
    }
    r
}
