//! The one error type of this crate. Every message is a single line that
//! names the flag, config file (with line:col when known) or field that is
//! wrong and says what to change. The binary prints it and exits 255.

use std::path::PathBuf;

/// Everything that can go wrong while reading the command line or a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An option that nsjail does not know (glibc: "unrecognized option").
    #[error("unrecognized option '{arg}'; see the usage above (nsjail has no such flag)")]
    UnknownOption {
        /// The argv element as given.
        arg: String,
    },
    /// A short option letter that nsjail does not know.
    #[error("invalid option -- '{letter}'; see the usage above")]
    InvalidShortOption {
        /// The offending character.
        letter: char,
    },
    /// An abbreviated long option that matches several options.
    #[error("option '{arg}' is ambiguous; possibilities: {candidates}; spell the option out")]
    AmbiguousOption {
        /// The argv element as given.
        arg: String,
        /// The matching long options, space separated, each with `--`.
        candidates: String,
    },
    /// An option that needs a value got none.
    #[error("option '{opt}' requires an argument; give one as '{opt} VALUE'")]
    MissingArgument {
        /// `--name` or `-x`.
        opt: String,
    },
    /// `--flag=value` for a flag that takes no value.
    #[error("option '{opt}' doesn't allow an argument; drop the '=...' part")]
    UnexpectedArgument {
        /// `--name`.
        opt: String,
    },
    /// `-?`: listed in nsjail's getopt string but handled as a usage error.
    #[error("option '-?' only prints the usage (as in nsjail); use -h/--help for help")]
    QuestionMark,
    /// A command-line element that is not valid UTF-8.
    #[error(
        "command-line argument #{index} is not valid UTF-8; pass paths and arguments as UTF-8"
    )]
    NotUtf8 {
        /// 1-based position after `argv[0]`.
        index: usize,
    },
    /// `-M` with a value whose first letter is not l/o/e/r.
    #[error(
        "--mode/-M '{value}': unknown mode; use l (listen), o (once), e (execve) or r (rerun)"
    )]
    BadMode {
        /// The value as given.
        value: String,
    },
    /// Neither `-- command` nor `exec_bin` nor `-x` gave a program to run.
    #[error("no command-line provided; add '-- /path/to/program [args]' or exec_bin {{ path: ... }} in the config")]
    NoCommand,
    /// A numeric flag value that is not a number or out of range.
    #[error("{flag}: '{value}' {reason}")]
    BadNumber {
        /// `--flag` (or `config FILE: field`).
        flag: String,
        /// The value as given.
        value: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// An rlimit flag value that is neither a number nor a keyword.
    #[error(
        "{flag}: '{value}' is not a number nor one of max|hard|def|soft|inf; give e.g. {flag} 512"
    )]
    BadRlimit {
        /// `--rlimit_xxx`.
        flag: String,
        /// The value as given.
        value: String,
    },
    /// A TCP port above 65535.
    #[error("{source_}: port {value} is out of range; use 0..65535")]
    PortOutOfRange {
        /// `--port` or `config FILE: port`.
        source_: String,
        /// The value.
        value: u64,
    },
    /// A user/group id that is neither a known name nor a number.
    #[error("{source_}: '{id}' is neither a known {kind} name nor a numeric id; use a name from the host's {db} or a number")]
    BadId {
        /// `-u`/`-g`/`-U`/`-G` or `config FILE: uidmap[N].inside_id`.
        source_: String,
        /// The id text.
        id: String,
        /// "user" or "group".
        kind: &'static str,
        /// "/etc/passwd" or "/etc/group".
        db: &'static str,
    },
    /// A capability name that is not CAP_CHOWN..CAP_CHECKPOINT_RESTORE.
    #[error("{source_}: unknown capability '{name}'; use a name like CAP_NET_ADMIN (CAP_CHOWN..CAP_CHECKPOINT_RESTORE)")]
    UnknownCap {
        /// `--cap`.
        source_: String,
        /// The name as given.
        name: String,
    },
    /// A MACVLAN mode nsjail does not support.
    #[error(
        "{source_}: macvlan mode '{value}' is not supported; use private, vepa, bridge or passthru"
    )]
    BadMacvlanMode {
        /// `--macvlan_vs_mo` or `config FILE: macvlan_vs_mo`.
        source_: String,
        /// The value as given.
        value: String,
    },
    /// `--experimental_mnt` with something other than new/old/auto.
    #[error("--experimental_mnt: '{value}' is not a mount API; use new, old or auto")]
    BadMountApi {
        /// The value as given.
        value: String,
    },
    /// A mount/symlink flag value without the parts it needs.
    #[error("{flag}: '{value}': {reason}")]
    BadMountSpec {
        /// `--bindmount` etc.
        flag: String,
        /// The value as given.
        value: String,
        /// What is missing.
        reason: String,
    },
    /// The config file could not be read.
    #[error("config '{}': cannot read: {source}; check the path and its permissions", path.display())]
    ConfigRead {
        /// The path given to `--config`.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file holds nothing.
    #[error("config '{}': the file is empty; write the settings in protobuf text format or ProtoJSON", path.display())]
    ConfigEmpty {
        /// The path given to `--config`.
        path: PathBuf,
    },
    /// The config file parsed neither as text format nor as JSON.
    #[error("config '{}': {primary}; (as {other_kind}: {other})", path.display())]
    ConfigParse {
        /// The path given to `--config`.
        path: PathBuf,
        /// The error of the format the file most likely is in, with line:col.
        primary: String,
        /// "JSON" or "text format".
        other_kind: &'static str,
        /// The other parser's error, with its location.
        other: String,
    },
    /// The config file parsed both as text format and as JSON.
    #[error("config '{}': parsed ambiguously as both text format and JSON; make it one or the other", path.display())]
    ConfigAmbiguous {
        /// The path given to `--config`.
        path: PathBuf,
    },
    /// A config value that parsed but is not acceptable.
    #[error("config '{}': {field}: {reason}", path.display())]
    ConfigInvalid {
        /// The path given to `--config`.
        path: PathBuf,
        /// The field (with index for repeated fields, and line:col when known).
        field: String,
        /// What is wrong and what to change.
        reason: String,
    },
    /// Both a policy file and policy strings.
    #[error("seccomp_policy_file ('{file}') and seccomp_string are both set; they are mutually exclusive, keep one (--seccomp_policy/-P or --seccomp_string)")]
    SeccompBoth {
        /// The policy file.
        file: String,
    },
    /// memsw together with swap.
    #[error("cgroup_mem_memsw_max ({memsw}) and cgroup_mem_swap_max ({swap}) are both set; use only one of them (set cgroup_mem_swap_max to -1 or cgroup_mem_memsw_max to 0)")]
    MemswAndSwap {
        /// cgroup_mem_memsw_max.
        memsw: u64,
        /// cgroup_mem_swap_max.
        swap: i64,
    },
}

impl ConfigError {
    /// True when nsjail prints its usage text (to stderr) with this error:
    /// command-line syntax errors and a missing command.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ConfigError::UnknownOption { .. }
                | ConfigError::InvalidShortOption { .. }
                | ConfigError::AmbiguousOption { .. }
                | ConfigError::MissingArgument { .. }
                | ConfigError::UnexpectedArgument { .. }
                | ConfigError::QuestionMark
                | ConfigError::BadMode { .. }
                | ConfigError::NoCommand
        )
    }
}
