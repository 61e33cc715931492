//! nsjail's command line, applied in argv order with nsjail's semantics:
//! `--config` loads a file where it appears and replaces every proto setting
//! given before it; the settings nsjail keeps outside its proto survive
//! (`--chroot`, `--rw`, `--proc_path`, `--proc_rw`, `--disable_proc`,
//! `--pass_fd`, `-u/-g/-U/-G`, `--experimental_mnt`, log settings, and our
//! `--check`/`--run_report`); later flags override the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use protobuf::reflect::ReflectValueBox;
use protobuf::MessageFull;

use crate::error::ConfigError;
use crate::getopt::{Getopt, HasArg, OptSpec, OPTIONS};
use crate::load::{load_config_file_with_locs, ConfigFormat};
use crate::proto::config::ns_jail_config::user_net::Backend;
use crate::proto::config::{IdMap, LogLevel, Mode, MountPt, NsJailConfig, RLimit};
use crate::values::{
    cap_from_name, parse_id_map, parse_macvlan_mode, parse_num, parse_rlimit_arg, resolve_id,
    IdKind, IdRange, RlimitArg,
};
use crate::{Jail, MountApi};

/// Where logs go when neither the command line nor a config says.
pub const DAEMON_LOG_FILE: &str = "/var/log/nsjail.log";
/// procfs mount point unless `--proc_path` says otherwise.
pub const DEFAULT_PROC_PATH: &str = "/proc";
/// Options nsjail gives `-T` tmpfs mounts.
pub const TMPFS_OPTIONS: &str = "size=4194304";

/// Result of parsing the command line.
#[derive(Debug)]
pub enum Parsed {
    /// `-h/--help`: print [`usage`] to stdout and exit 0.
    Help,
    /// `-V/--version`: print the version and the build's features, exit 0.
    Version,
    /// A validated jail.
    Run(Box<Jail>),
}

/// What a flag does to the proto when it is a plain field setter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction {
    /// Sets a bool field to true.
    SetTrue(&'static str),
    /// Sets a bool field to false.
    SetFalse(&'static str),
    /// Sets a string field.
    SetStr(&'static str),
    /// Appends to a repeated string field.
    PushStr(&'static str),
    /// Sets a uint32 field.
    SetU32(&'static str),
    /// Sets a uint64 field.
    SetU64(&'static str),
    /// Sets an int32 field.
    SetI32(&'static str),
    /// Sets an int64 field.
    SetI64(&'static str),
    /// Sets `<name>` (number, type VALUE) or `<name>_type` (keyword).
    Rlimit(&'static str),
}

/// The proto field a plain flag sets, or `None` for flags with their own logic.
pub fn field_action(long: &str) -> Option<FieldAction> {
    use FieldAction::*;
    Some(match long {
        "no_pivotroot" => SetTrue("no_pivotroot"),
        "hostname" => SetStr("hostname"),
        "cwd" => SetStr("cwd"),
        "bindhost" => SetStr("bindhost"),
        "max_conns" => SetU32("max_conns"),
        "max_conns_per_ip" => SetU32("max_conns_per_ip"),
        "time_limit" => SetU32("time_limit"),
        "max_cpus" => SetU32("max_cpus"),
        "daemon" => SetTrue("daemon"),
        "keep_env" => SetTrue("keep_env"),
        "keep_caps" => SetTrue("keep_caps"),
        "silent" => SetTrue("silent"),
        "stderr_to_null" => SetTrue("stderr_to_null"),
        "skip_setsid" => SetTrue("skip_setsid"),
        "disable_no_new_privs" => SetTrue("disable_no_new_privs"),
        "rlimit_as" => Rlimit("rlimit_as"),
        "rlimit_core" => Rlimit("rlimit_core"),
        "rlimit_cpu" => Rlimit("rlimit_cpu"),
        "rlimit_fsize" => Rlimit("rlimit_fsize"),
        "rlimit_nofile" => Rlimit("rlimit_nofile"),
        "rlimit_nproc" => Rlimit("rlimit_nproc"),
        "rlimit_stack" => Rlimit("rlimit_stack"),
        "rlimit_memlock" => Rlimit("rlimit_memlock"),
        "rlimit_rtprio" => Rlimit("rlimit_rtprio"),
        "rlimit_msgqueue" => Rlimit("rlimit_msgqueue"),
        "disable_rlimits" => SetTrue("disable_rl"),
        "persona_addr_compat_layout" => SetTrue("persona_addr_compat_layout"),
        "persona_mmap_page_zero" => SetTrue("persona_mmap_page_zero"),
        "persona_read_implies_exec" => SetTrue("persona_read_implies_exec"),
        "persona_addr_limit_3gb" => SetTrue("persona_addr_limit_3gb"),
        "persona_addr_no_randomize" => SetTrue("persona_addr_no_randomize"),
        "disable_clone_newnet" => SetFalse("clone_newnet"),
        "disable_clone_newuser" => SetFalse("clone_newuser"),
        "disable_clone_newns" => SetFalse("clone_newns"),
        "disable_clone_newpid" => SetFalse("clone_newpid"),
        "disable_clone_newipc" => SetFalse("clone_newipc"),
        "disable_clone_newuts" => SetFalse("clone_newuts"),
        "disable_clone_newcgroup" => SetFalse("clone_newcgroup"),
        "enable_clone_newtime" => SetTrue("clone_newtime"),
        "seccomp_policy" => SetStr("seccomp_policy_file"),
        "seccomp_string" => PushStr("seccomp_string"),
        "seccomp_log" => SetTrue("seccomp_log"),
        "seccomp_unotify" => SetTrue("seccomp_unotify"),
        "seccomp_unotify_report" => SetStr("seccomp_unotify_report"),
        "nice_level" => SetI32("nice_level"),
        "cgroup_mem_max" => SetU64("cgroup_mem_max"),
        "cgroup_mem_memsw_max" => SetU64("cgroup_mem_memsw_max"),
        "cgroup_mem_swap_max" => SetI64("cgroup_mem_swap_max"),
        "cgroup_mem_mount" => SetStr("cgroup_mem_mount"),
        "cgroup_mem_parent" => SetStr("cgroup_mem_parent"),
        "cgroup_pids_max" => SetU64("cgroup_pids_max"),
        "cgroup_pids_mount" => SetStr("cgroup_pids_mount"),
        "cgroup_pids_parent" => SetStr("cgroup_pids_parent"),
        "cgroup_net_cls_classid" => SetU32("cgroup_net_cls_classid"),
        "cgroup_net_cls_mount" => SetStr("cgroup_net_cls_mount"),
        "cgroup_net_cls_parent" => SetStr("cgroup_net_cls_parent"),
        "cgroup_cpu_ms_per_sec" => SetU32("cgroup_cpu_ms_per_sec"),
        "cgroup_cpu_mount" => SetStr("cgroup_cpu_mount"),
        "cgroup_cpu_parent" => SetStr("cgroup_cpu_parent"),
        "cgroupv2_mount" => SetStr("cgroupv2_mount"),
        "use_cgroupv2" => SetTrue("use_cgroupv2"),
        "detect_cgroupv2" => SetTrue("detect_cgroupv2"),
        "iface_no_lo" => SetTrue("iface_no_lo"),
        "iface_own" => PushStr("iface_own"),
        "macvlan_iface" => SetStr("macvlan_iface"),
        "macvlan_vs_ip" => SetStr("macvlan_vs_ip"),
        "macvlan_vs_nm" => SetStr("macvlan_vs_nm"),
        "macvlan_vs_gw" => SetStr("macvlan_vs_gw"),
        "macvlan_vs_ma" => SetStr("macvlan_vs_ma"),
        "disable_tsc" => SetTrue("disable_tsc"),
        "forward_signals" => SetTrue("forward_signals"),
        "use_core_scheduling" => SetTrue("use_core_scheduling"),
        "oom_score_adj" => SetI32("oom_score_adj"),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum LogTarget {
    Fd(i32),
    File(String),
}

/// Parse state: the proto (replaced by `--config`) plus what survives it.
struct State {
    cfg: NsJailConfig,
    chroot: Option<String>,
    root_rw: bool,
    proc_path: Option<String>,
    proc_rw: bool,
    pass_fds: Vec<i32>,
    uids: Vec<IdRange>,
    gids: Vec<IdRange>,
    mount_api: MountApi,
    /// Log settings of the command line (`-l`, `-L`, `-v`, `-q`, `-Q`):
    /// they win over any config's, wherever they stand in argv.
    cli_log_target: Option<LogTarget>,
    cli_log_level: Option<LogLevel>,
    /// Log settings of the config files (the last file's win).
    log_target: Option<LogTarget>,
    log_level: Option<LogLevel>,
    /// argv from a config's exec_bin (path, args, arg0 applied).
    config_argv: Vec<String>,
    run_report: Option<PathBuf>,
    check_only: bool,
    allow_vsock: bool,
    allow_bind_symlinks: bool,
    config_files: Vec<PathBuf>,
    origins: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Proto-setting flags seen since the start or the last `--config`.
    pending_proto_flags: Vec<String>,
}

impl State {
    fn new() -> State {
        State {
            cfg: NsJailConfig::new(),
            chroot: None,
            root_rw: false,
            proc_path: Some(DEFAULT_PROC_PATH.to_string()),
            proc_rw: false,
            pass_fds: Vec::new(),
            uids: Vec::new(),
            gids: Vec::new(),
            // Ours: recursive attributes in one mount_setattr call where the
            // kernel has it (remounts otherwise); `old` forces remounts.
            mount_api: MountApi::Auto,
            cli_log_target: None,
            cli_log_level: None,
            log_target: None,
            log_level: None,
            config_argv: Vec::new(),
            run_report: None,
            check_only: false,
            allow_vsock: false,
            allow_bind_symlinks: false,
            config_files: Vec::new(),
            origins: BTreeMap::new(),
            warnings: Vec::new(),
            pending_proto_flags: Vec::new(),
        }
    }

    fn touched(&mut self, flag: &str, field: &str) {
        self.origins.insert(field.to_string(), flag.to_string());
        if !self.pending_proto_flags.iter().any(|f| f == flag) {
            self.pending_proto_flags.push(flag.to_string());
        }
    }
}

fn set_field(cfg: &mut NsJailConfig, field: &str, v: ReflectValueBox) {
    if let Some(f) = NsJailConfig::descriptor().field_by_name(field) {
        if f.is_repeated() {
            f.mut_repeated(cfg).push(v);
        } else {
            f.set_singular_field(cfg, v);
        }
    }
}

fn set_rlimit_type(cfg: &mut NsJailConfig, field: &str, t: RLimit) {
    let desc = NsJailConfig::descriptor();
    if let Some(f) = desc.field_by_name(&format!("{field}_type")) {
        f.set_singular_field(
            cfg,
            ReflectValueBox::Enum(RLimit::enum_descriptor(), t as i32),
        );
    }
}

use protobuf::EnumFull;

fn display_flag(spec: &OptSpec) -> String {
    format!("--{}", spec.long)
}

/// Adds an environment entry the way nsjail's `-E` does: `NAME=VALUE` as
/// is, a bare `NAME` copies nsjail's own value (warning and skipped if unset).
fn add_env(list: &mut Vec<String>, warnings: &mut Vec<String>, source: &str, e: &str) {
    if e.contains('=') {
        list.push(e.to_string());
        return;
    }
    match std::env::var(e) {
        Ok(v) => list.push(format!("{e}={v}")),
        Err(_) => warnings.push(format!(
            "{source}: environment variable '{e}' is not set in nsjail's environment (or not UTF-8); it is ignored. Give it as {e}=VALUE"
        )),
    }
}

fn idmap_proto(r: &IdRange) -> IdMap {
    let mut m = IdMap::new();
    m.set_inside_id(r.inside.to_string());
    m.set_outside_id(r.outside.to_string());
    m.set_count(r.count);
    m.set_use_newidmap(r.use_newidmap);
    m
}

fn mount_spec_err(flag: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::BadMountSpec {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Builds the `MountPt` for `-R/-B/-T/-m/-s` as nsjail does.
pub fn cli_mount(long: &str, value: &str) -> Result<MountPt, ConfigError> {
    let flag = format!("--{long}");
    let mut m = MountPt::new();
    m.set_mandatory(true);
    match long {
        "bindmount_ro" | "bindmount" => {
            let mut parts = value.splitn(3, ':');
            let src = parts.next().unwrap_or("");
            let dst = parts.next().unwrap_or("");
            let rest = parts.next();
            if src.is_empty() {
                return Err(mount_spec_err(
                    &flag,
                    value,
                    "needs a source path: src[:dst]",
                ));
            }
            m.set_src(src.to_string());
            m.set_dst(if dst.is_empty() { src } else { dst }.to_string());
            m.set_is_bind(true);
            if long == "bindmount" {
                m.set_rw(true);
                if let Some(opts) = rest {
                    m.set_options(opts.to_string());
                }
            } else {
                m.set_rw(false);
            }
        }
        "tmpfsmount" => {
            if value.is_empty() {
                return Err(mount_spec_err(
                    &flag,
                    value,
                    "needs the mount point inside the jail",
                ));
            }
            m.set_src(String::new());
            m.set_dst(value.to_string());
            m.set_fstype("tmpfs".to_string());
            m.set_options(TMPFS_OPTIONS.to_string());
            m.set_rw(true);
            m.set_is_dir(true);
        }
        "mount" => {
            let mut parts = value.splitn(4, ':');
            let src = parts.next().unwrap_or("");
            let dst = parts.next().unwrap_or("");
            let fstype = parts.next().unwrap_or("");
            let options = parts.next().unwrap_or("");
            let dst = if dst.is_empty() { src } else { dst };
            if dst.is_empty() {
                return Err(mount_spec_err(
                    &flag,
                    value,
                    "needs src:dst:fstype:options with a non-empty dst (or src)",
                ));
            }
            m.set_src(src.to_string());
            m.set_dst(dst.to_string());
            m.set_fstype(fstype.to_string());
            m.set_options(options.to_string());
            m.set_rw(true);
        }
        "symlink" => {
            let mut parts = value.splitn(3, ':');
            let src = parts.next().unwrap_or("");
            let dst = parts.next().unwrap_or("");
            if src.is_empty() || dst.is_empty() {
                return Err(mount_spec_err(
                    &flag,
                    value,
                    "needs src:dst (the link at dst points to src)",
                ));
            }
            m.set_src(src.to_string());
            m.set_dst(dst.to_string());
            m.set_is_symlink(true);
            m.set_is_dir(false);
            m.set_rw(true);
        }
        _ => return Err(mount_spec_err(&flag, value, "is not a mount flag")),
    }
    Ok(m)
}

/// Parses nsjail's command line (without `argv[0]`) into a validated [`Jail`].
pub fn parse_args<I, S>(args: I) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    parse_args_with_configs(&[], args)
}

/// Like [`parse_args`], with config texts applied first, in order, as if
/// each were a `--config NAME` ahead of `args` (`NAME` only names it in
/// messages and in `--check`). For programs that hold their config in
/// memory (ours).
///
/// # Errors
/// As [`parse_args`], and a config text that does not parse.
pub fn parse_args_with_configs<I, S>(
    configs: &[(&Path, &[u8])],
    args: I,
) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut st = State::new();
    for (name, text) in configs {
        let loaded = crate::load_config_bytes(name, text)?;
        apply_loaded_config(&mut st, name, loaded)?;
    }
    let mut strs = Vec::new();
    for (i, a) in args.into_iter().enumerate() {
        match a.into().into_string() {
            Ok(s) => strs.push(s),
            Err(_) => return Err(ConfigError::NotUtf8 { index: i + 1 }),
        }
    }
    let mut g = Getopt::new(strs);
    while let Some(ev) = g.next_opt()? {
        let value = ev.value.unwrap_or_default();
        match ev.spec.long {
            "help" => return Ok(Parsed::Help),
            "version" => return Ok(Parsed::Version),
            _ => {}
        }
        apply(&mut st, ev.spec, &value)?;
    }
    let command = g.into_operands();
    finish(st, command).map(|j| Parsed::Run(Box::new(j)))
}

/// Applies one option (`--help` and `--version` end the scan in [`parse_args`]).
fn apply(st: &mut State, spec: &'static OptSpec, value: &str) -> Result<(), ConfigError> {
    let flag = display_flag(spec);
    if let Some(action) = field_action(spec.long) {
        debug_assert!(
            (spec.has_arg == HasArg::No)
                == matches!(action, FieldAction::SetTrue(_) | FieldAction::SetFalse(_))
        );
        apply_field(st, &flag, action, value)?;
        return Ok(());
    }
    match spec.long {
        "help" | "version" => {}
        "mode" => {
            let mode = match value.chars().next() {
                Some('l') => Mode::LISTEN,
                Some('o') => Mode::ONCE,
                Some('e') => Mode::EXECVE,
                Some('r') => Mode::RERUN,
                _ => {
                    return Err(ConfigError::BadMode {
                        value: value.to_string(),
                    })
                }
            };
            st.cfg.set_mode(mode);
            st.touched(&flag, "mode");
        }
        "config" => apply_config(st, Path::new(value))?,
        "exec_file" => {
            st.cfg
                .exec_bin
                .mut_or_insert_default()
                .set_path(value.to_string());
            st.touched(&flag, "exec_bin");
        }
        "execute_fd" => {
            st.cfg.exec_bin.mut_or_insert_default().set_exec_fd(true);
            st.touched(&flag, "exec_bin");
        }
        "chroot" => st.chroot = Some(value.to_string()),
        "rw" => st.root_rw = true,
        "user" | "group" | "uid_mapping" | "gid_mapping" => {
            let kind = if matches!(spec.long, "user" | "uid_mapping") {
                IdKind::User
            } else {
                IdKind::Group
            };
            let newidmap = matches!(spec.long, "uid_mapping" | "gid_mapping");
            let r = parse_id_map(&flag, value, kind, newidmap)?;
            match kind {
                IdKind::User => st.uids.push(r),
                IdKind::Group => st.gids.push(r),
            }
        }
        "port" => {
            let port: u64 = parse_num(&flag, value)?;
            if port > 65535 {
                return Err(ConfigError::PortOutOfRange {
                    source_: flag,
                    value: port,
                });
            }
            st.cfg.set_port(port as u32);
            st.cfg.set_mode(Mode::LISTEN);
            st.touched(&flag, "port");
            st.touched(&flag, "mode");
        }
        "log" => st.cli_log_target = Some(LogTarget::File(value.to_string())),
        "log_fd" => st.cli_log_target = Some(LogTarget::Fd(parse_num::<i32>(&flag, value)?)),
        "verbose" => st.cli_log_level = Some(LogLevel::DEBUG),
        "quiet" => st.cli_log_level = Some(LogLevel::WARNING),
        "really_quiet" => st.cli_log_level = Some(LogLevel::FATAL),
        "env" => {
            let State { cfg, warnings, .. } = st;
            add_env(&mut cfg.envar, warnings, &flag, value);
            st.touched(&flag, "envar");
        }
        "cap" => {
            if cap_from_name(value).is_none() {
                return Err(ConfigError::UnknownCap {
                    source_: flag,
                    name: value.to_string(),
                });
            }
            st.cfg.cap.push(value.to_string());
            st.touched(&flag, "cap");
        }
        "pass_fd" => st.pass_fds.push(parse_num::<i32>(&flag, value)?),
        "bindmount_ro" | "bindmount" | "tmpfsmount" | "mount" | "symlink" => {
            let m = cli_mount(spec.long, value)?;
            st.cfg.mount.push(m);
            st.touched(&flag, "mount");
        }
        "disable_proc" => st.proc_path = None,
        "proc_path" => {
            st.proc_path = Some(value.to_string());
            st.cfg.set_mount_proc(true);
        }
        "proc_rw" => st.proc_rw = true,
        "experimental_mnt" => {
            st.mount_api = match value.to_ascii_lowercase().as_str() {
                "new" => MountApi::New,
                "old" => MountApi::Old,
                "auto" => MountApi::Auto,
                _ => {
                    return Err(ConfigError::BadMountApi {
                        value: value.to_string(),
                    })
                }
            }
        }
        "macvlan_vs_mo" => {
            let m = parse_macvlan_mode(&flag, value)?;
            st.cfg.set_macvlan_vs_mo(m);
            st.touched(&flag, "macvlan_vs_mo");
        }
        "user_net" => {
            st.cfg
                .user_net
                .mut_or_insert_default()
                .set_backend(Backend::NSTUN);
            st.touched(&flag, "user_net");
        }
        "use_pasta" => {
            // nsjail 3.5/3.6's flag: its pasta-only user_net schema.
            st.cfg.user_net.mut_or_insert_default().set_enable(true);
            st.touched(&flag, "user_net");
        }
        "check" => st.check_only = true,
        "allow_vsock" => st.allow_vsock = true,
        "allow_bind_symlinks" => st.allow_bind_symlinks = true,
        "run_report" => st.run_report = Some(PathBuf::from(value)),
        other => {
            // Every table entry is handled above; an unhandled one is a bug
            // in this crate, reported instead of panicking.
            return Err(ConfigError::UnknownOption {
                arg: format!("--{other}"),
            });
        }
    }
    Ok(())
}

fn apply_field(
    st: &mut State,
    flag: &str,
    action: FieldAction,
    value: &str,
) -> Result<(), ConfigError> {
    let field = match action {
        FieldAction::SetTrue(f) => {
            set_field(&mut st.cfg, f, ReflectValueBox::Bool(true));
            f
        }
        FieldAction::SetFalse(f) => {
            set_field(&mut st.cfg, f, ReflectValueBox::Bool(false));
            f
        }
        FieldAction::SetStr(f) | FieldAction::PushStr(f) => {
            set_field(&mut st.cfg, f, ReflectValueBox::String(value.to_string()));
            f
        }
        FieldAction::SetU32(f) => {
            set_field(
                &mut st.cfg,
                f,
                ReflectValueBox::U32(parse_num(flag, value)?),
            );
            f
        }
        FieldAction::SetU64(f) => {
            set_field(
                &mut st.cfg,
                f,
                ReflectValueBox::U64(parse_num(flag, value)?),
            );
            f
        }
        FieldAction::SetI32(f) => {
            set_field(
                &mut st.cfg,
                f,
                ReflectValueBox::I32(parse_num(flag, value)?),
            );
            f
        }
        FieldAction::SetI64(f) => {
            set_field(
                &mut st.cfg,
                f,
                ReflectValueBox::I64(parse_num(flag, value)?),
            );
            f
        }
        FieldAction::Rlimit(f) => {
            match parse_rlimit_arg(flag, value)? {
                RlimitArg::Value(v) => {
                    set_field(&mut st.cfg, f, ReflectValueBox::U64(v));
                    set_rlimit_type(&mut st.cfg, f, RLimit::VALUE);
                }
                RlimitArg::Type(t) => set_rlimit_type(&mut st.cfg, f, t),
            }
            st.touched(flag, &format!("{f}_type"));
            f
        }
    };
    st.touched(flag, field);
    Ok(())
}

fn config_src(path: &Path) -> String {
    format!("config '{}'", path.display())
}

fn apply_config(st: &mut State, path: &Path) -> Result<(), ConfigError> {
    let loaded = load_config_file_with_locs(path)?;
    apply_loaded_config(st, path, loaded)
}

fn apply_loaded_config(
    st: &mut State,
    path: &Path,
    loaded: crate::LoadedConfig,
) -> Result<(), ConfigError> {
    if !st.pending_proto_flags.is_empty() {
        st.warnings.push(format!(
            "{} given before --config '{}' were discarded (nsjail replaces the whole config when it loads a file); move them after --config",
            st.pending_proto_flags.join(", "),
            path.display()
        ));
        st.pending_proto_flags.clear();
    }
    let src = config_src(path);
    let mut c = loaded.cfg;

    // Log settings survive later files without log settings; the command
    // line's win over them (see finish).
    if c.has_log_fd() {
        st.log_target = Some(LogTarget::Fd(c.log_fd()));
    }
    if c.has_log_file() {
        st.log_target = Some(LogTarget::File(c.log_file().to_string()));
    }
    if c.has_log_level() {
        st.log_level = Some(c.log_level());
    }

    // envar: the same logic as -E (bare NAME copies nsjail's value).
    let envs = std::mem::take(&mut c.envar);
    for (i, e) in envs.iter().enumerate() {
        add_env(
            &mut c.envar,
            &mut st.warnings,
            &format!("{src}: envar[{i}]"),
            e,
        );
    }

    // uid/gid maps are appended to the ones from -u/-g/-U/-G.
    for (list, maps, kind, name) in [
        (&mut st.uids, &c.uidmap, IdKind::User, "uidmap"),
        (&mut st.gids, &c.gidmap, IdKind::Group, "gidmap"),
    ] {
        for (i, m) in maps.iter().enumerate() {
            let inside = resolve_id(
                &format!("{src}: {name}[{i}].inside_id"),
                m.inside_id(),
                kind,
            )?;
            let outside = resolve_id(
                &format!("{src}: {name}[{i}].outside_id"),
                m.outside_id(),
                kind,
            )?;
            list.push(IdRange {
                inside,
                outside,
                count: m.count().max(1),
                use_newidmap: m.use_newidmap(),
            });
        }
    }
    c.uidmap.clear();
    c.gidmap.clear();

    st.pass_fds.extend(c.pass_fd.iter().copied());
    c.pass_fd.clear();

    if !c.mount_proc() {
        st.proc_path = None;
    }

    if c.has_macvlan_vs_mo() {
        let m = parse_macvlan_mode(&format!("{src}: macvlan_vs_mo"), c.macvlan_vs_mo())?;
        c.set_macvlan_vs_mo(m);
    }
    if c.port() > 65535 {
        return Err(ConfigError::PortOutOfRange {
            source_: format!("{src}: port"),
            value: u64::from(c.port()),
        });
    }

    if let Some(exe) = c.exec_bin.as_ref() {
        let mut argv = vec![exe.path().to_string()];
        argv.extend(exe.arg.iter().cloned());
        if exe.has_arg0() {
            argv[0] = exe.arg0().to_string();
        }
        st.config_argv = argv;
    }

    st.origins.clear();
    match loaded.format {
        ConfigFormat::Text => {
            for l in &loaded.locs {
                st.origins
                    .insert(l.field.clone(), format!("{}:{}", src, l.line));
            }
        }
        ConfigFormat::Json => {
            let desc = NsJailConfig::descriptor();
            for f in desc.fields() {
                if f.is_repeated() && !f.get_repeated(&c).is_empty()
                    || !f.is_repeated() && f.has_field(&c)
                {
                    st.origins.insert(f.name().to_string(), src.clone());
                }
            }
        }
    }
    st.config_files.push(path.to_path_buf());
    st.cfg = c;
    Ok(())
}

fn finish(mut st: State, command: Vec<String>) -> Result<Jail, ConfigError> {
    let mut cfg = std::mem::take(&mut st.cfg);

    // Logging: the command line's settings win over the config's (ours:
    // nsjail applies them in argv order, so `-v --config F` lost to F).
    // `-v` asks to see the log: a config's `log_fd: -1` (silence) then
    // gives way to stderr unless the command line names a target too.
    let mut target = st.cli_log_target.clone().or(st.log_target.clone());
    let level = st.cli_log_level.or(st.log_level);
    if st.cli_log_level == Some(LogLevel::DEBUG)
        && st.cli_log_target.is_none()
        && matches!(target, Some(LogTarget::Fd(fd)) if fd < 0)
    {
        target = Some(LogTarget::Fd(libc::STDERR_FILENO));
    }
    // A daemon without a target logs to a file.
    if cfg.daemon() && target.is_none() {
        target = Some(LogTarget::File(DAEMON_LOG_FILE.to_string()));
    }
    cfg.clear_log_fd();
    cfg.clear_log_file();
    match &target {
        None => cfg.set_log_fd(libc::STDERR_FILENO),
        Some(LogTarget::Fd(fd)) => cfg.set_log_fd(*fd),
        Some(LogTarget::File(f)) => cfg.set_log_file(f.clone()),
    }
    cfg.set_log_level(level.unwrap_or(LogLevel::INFO));

    // Mounts: --chroot first, /proc last.
    let mut mounts = Vec::with_capacity(cfg.mount.len() + 2);
    if let Some(dir) = &st.chroot {
        let mut m = MountPt::new();
        m.set_src(dir.clone());
        m.set_dst("/".to_string());
        m.set_is_bind(true);
        m.set_rw(st.root_rw);
        m.set_is_dir(true);
        m.set_mandatory(true);
        mounts.push(m);
    }
    mounts.append(&mut cfg.mount);
    if let Some(pp) = &st.proc_path {
        let mut m = MountPt::new();
        m.set_src(String::new());
        m.set_dst(pp.clone());
        m.set_fstype("proc".to_string());
        m.set_rw(st.proc_rw);
        // As nsjail since PR #283: the implicit procfs is nosuid,nodev,noexec.
        m.set_nosuid(true);
        m.set_nodev(true);
        m.set_noexec(true);
        m.set_is_dir(true);
        m.set_mandatory(true);
        mounts.push(m);
    }
    cfg.mount = mounts;
    cfg.set_mount_proc(st.proc_path.is_some());

    // argv: a CLI command replaces the config's argv; exec_bin.path is only
    // filled from argv[0] when nothing set it.
    let cli_command = !command.is_empty();
    let mut argv = if cli_command { command } else { st.config_argv };
    let has_path = cfg.exec_bin.as_ref().is_some_and(|e| !e.path().is_empty());
    if !has_path {
        match argv.first() {
            Some(a0) => {
                let a0 = a0.clone();
                cfg.exec_bin.mut_or_insert_default().set_path(a0);
            }
            // --check validates a config that names no program (a run
            // needs one: the report says so).
            None if st.check_only => {}
            None => return Err(ConfigError::NoCommand),
        }
    }
    if argv.is_empty() && !cfg.exec_bin.path().is_empty() {
        argv.push(cfg.exec_bin.path().to_string());
    }

    // Default id maps: nsjail's own uid/gid mapped to itself.
    if st.uids.is_empty() {
        let me = IdKind::User.current();
        st.uids.push(IdRange {
            inside: me,
            outside: me,
            count: 1,
            use_newidmap: false,
        });
    }
    if st.gids.is_empty() {
        let me = IdKind::Group.current();
        st.gids.push(IdRange {
            inside: me,
            outside: me,
            count: 1,
            use_newidmap: false,
        });
    }
    cfg.uidmap = st.uids.iter().map(idmap_proto).collect();
    cfg.gidmap = st.gids.iter().map(idmap_proto).collect();
    cfg.pass_fd = st.pass_fds.clone();

    validate(&cfg)?;

    Ok(Jail {
        cfg,
        argv,
        chroot: st.chroot,
        mount_api: st.mount_api,
        run_report: st.run_report,
        check_only: st.check_only,
        allow_vsock: st.allow_vsock,
        allow_bind_symlinks: st.allow_bind_symlinks,
        root_rw: st.root_rw,
        proc_rw: st.proc_rw,
        cli_command,
        config_files: st.config_files,
        uid_map: st.uids,
        gid_map: st.gids,
        origins: st.origins,
        warnings: st.warnings,
    })
}

/// The checks nsjail makes on the final config (each fatal, exit 255).
pub fn validate(cfg: &NsJailConfig) -> Result<(), ConfigError> {
    if cfg.has_seccomp_policy_file() && !cfg.seccomp_string.is_empty() {
        return Err(ConfigError::SeccompBoth {
            file: cfg.seccomp_policy_file().to_string(),
        });
    }
    if cfg.cgroup_mem_memsw_max() > 0 && cfg.cgroup_mem_swap_max() >= 0 {
        return Err(ConfigError::MemswAndSwap {
            memsw: cfg.cgroup_mem_memsw_max(),
            swap: cfg.cgroup_mem_swap_max(),
        });
    }
    if cfg.port() > 65535 {
        return Err(ConfigError::PortOutOfRange {
            source_: "port".to_string(),
            value: u64::from(cfg.port()),
        });
    }
    Ok(())
}

/// nsjail-style usage text listing every flag.
pub fn usage() -> String {
    let mut s = String::from("Usage: nsjail [options] -- path_to_command [args]\nOptions:\n");
    for o in OPTIONS {
        let arg = if o.has_arg == HasArg::Required {
            " VALUE"
        } else {
            ""
        };
        match o.short {
            Some(c) => s.push_str(&format!(" --{}|-{c}{arg}\n", o.long)),
            None => s.push_str(&format!(" --{}{arg}\n", o.long)),
        }
        s.push_str(&format!("\t{}\n", o.help));
    }
    s.push_str(
        "\n Examples:\n \
         Wait on port 31337 for connections and run /bin/sh:\n  \
         nsjail -Ml --port 31337 --chroot / -- /bin/sh -i\n \
         Run /bin/echo once, as a sub-process:\n  \
         nsjail -Mo --chroot / -- /bin/echo \"ABC\"\n \
         Load a config file, then override its time limit:\n  \
         nsjail --config jail.cfg -t 5 -- /usr/bin/python3 script.py\n",
    );
    s
}
