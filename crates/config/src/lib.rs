//! nsjail's configuration: the schema (generated from `proto/config.proto`),
//! loading from text format and ProtoJSON, command-line parsing, validation.
//!
//! Two values come out of it:
//! * [`Jail`]: the effective `NsJailConfig` after the command line and any
//!   `--config` files were applied in nsjail's order, with the implicit parts
//!   filled in (the `--chroot` bind first in `mount`, the `/proc` mount last,
//!   default uid/gid maps, the effective log settings, `exec_bin.path` set),
//!   plus the settings that live outside the proto and where each field came
//!   from (for `--check`);
//! * [`spec::JailSpec`], lowered from it by [`Jail::lower`]: the one typed
//!   value the runtime takes. Every check that can fail before `clone` runs
//!   in the lowering, so `--check` and a launch agree.
//!
//! Effective-config conventions of [`Jail::cfg`]:
//! * `cfg.mount`: `--chroot` bind of DIR at `/` first (if given), then the
//!   config/CLI mounts in order, then procfs at `proc_path` last (if not
//!   disabled); `cfg.mount_proc` says whether that last entry exists. No
//!   entry is added for the empty root tmpfs used without `--chroot`
//!   (its writability is [`Jail::root_rw`]).
//! * [`Jail::uid_map`]/[`Jail::gid_map`]: never empty; ids resolved to
//!   numbers once (names looked up, empty = nsjail's own id), `count >= 1`
//!   (`cfg.uidmap`/`cfg.gidmap` hold the same, for display).
//! * exactly one of `cfg.log_fd` / `cfg.log_file` is set (fd 2 by default,
//!   `/var/log/nsjail.log` for a daemon without a target); `cfg.log_level`
//!   is always set (INFO by default).
//! * `cfg.envar` entries are all `NAME=VALUE` (bare names already resolved
//!   from nsjail's environment); `cfg.pass_fd` holds the CLI and config fds.
//! * `cfg.exec_bin.path` is set; [`Jail::argv`] is what to pass as argv.
//!
//! Config files are protobuf text format (parsed by [`textformat`], which
//! accepts what C++ protobuf accepts) or ProtoJSON (`protobuf-json-mapping`).
//! rust-protobuf 3 was chosen over prost: it generates proto2 presence and
//! defaults as accessors and has JSON mapping and reflection without protoc.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod check;
mod cmdline;
pub mod docs;
mod error;
pub mod getopt;
mod load;
mod rlimit;
pub mod spec;
pub mod textformat;
pub mod values;

/// rust-protobuf, re-exported so users of the generated types need no own dependency.
pub use protobuf;

pub use check::{check_report, describe_mount, trap_warnings, HostFacts};
pub use cmdline::{
    cli_mount, field_action, parse_args, parse_args_with_configs, usage, validate, FieldAction,
    Parsed, DAEMON_LOG_FILE, DEFAULT_PROC_PATH, TMPFS_OPTIONS,
};
pub use error::ConfigError;
pub use load::{
    load_config_bytes, load_config_file, load_config_file_with_locs, ConfigFormat, LoadedConfig,
};
pub use rlimit::{
    human_bytes, jail_rlimit_plan, rlimit_plan, RlimitField, RlimitResource, RlimitSetting,
    RlimitValue, RLIMIT_FIELDS,
};
pub use values::{cap_from_name, cap_name, parse_id_map, IdKind, IdRange, CAP_NAMES};

/// The generated protobuf messages (`NsJailConfig`, `MountPt`, `IdMap`, ...).
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto/mod.rs"));
}

pub use proto::config::*;

/// Which mount API the runtime should use (`--experimental_mnt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountApi {
    /// mount(2) only.
    Old,
    /// fsopen/open_tree/move_mount.
    New,
    /// The new API where the kernel has it, else old (our default; nsjail's
    /// is `old`, whose read-only remounts are not recursive).
    #[default]
    Auto,
}

/// A fully parsed and validated jail description. Made only by
/// [`parse_args`] (and [`parse_args_with_configs`]), which fill in nsjail's
/// defaults and the implicit parts; there is no `Default` (an empty value
/// would be a jail without them).
#[derive(Debug, Clone)]
pub struct Jail {
    /// The effective config (see the crate docs for what is filled in).
    pub cfg: NsJailConfig,
    /// The argv given to execve; `argv[0]` included (`exec_bin.arg0` applied).
    pub argv: Vec<String>,
    /// `--chroot DIR`, if given (already present as the first mount).
    pub chroot: Option<String>,
    /// `--experimental_mnt`.
    pub mount_api: MountApi,
    /// `--run_report FILE` (ours): JSON account of each run.
    pub run_report: Option<PathBuf>,
    /// `--check` (ours): print the effective jail and its warnings, run nothing.
    pub check_only: bool,
    /// `--allow_vsock` (ours): no AF_VSOCK filter beside the user's policy.
    pub allow_vsock: bool,
    /// `--allow_bind_symlinks` (ours): a bind source's path may cross a
    /// symlink inside a read-write bind source of the same jail.
    pub allow_bind_symlinks: bool,
    /// `--rw`: the root (chroot bind, or the empty root tmpfs) stays writable.
    pub root_rw: bool,
    /// `--proc_rw`: procfs is mounted read-write (already applied to the
    /// `/proc` entry in `cfg.mount`).
    pub proc_rw: bool,
    /// True when argv came from the command line (`-- cmd args`), false when
    /// from a config's `exec_bin`.
    pub cli_command: bool,
    /// The `--config` files loaded, in order.
    pub config_files: Vec<PathBuf>,
    /// Where each proto field's value came from: top-level field name →
    /// `--flag` or `config 'FILE':LINE` (`config 'FILE'` for JSON).
    /// Fields absent here have their default.
    pub origins: BTreeMap<String, String>,
    /// The uid map (never empty: nsjail's own uid mapped to itself by
    /// default); names already resolved to numbers.
    pub uid_map: Vec<IdRange>,
    /// The gid map (never empty), as `uid_map`.
    pub gid_map: Vec<IdRange>,
    /// Warnings found while parsing (flags discarded by a later `--config`,
    /// unset variables named by `-E`/`envar`). [`trap_warnings`] includes them.
    pub warnings: Vec<String>,
}

impl Jail {
    /// Lower into the typed [`spec::JailSpec`] the runtime takes (every
    /// check that can fail before `clone`).
    ///
    /// # Errors
    /// [`spec::SpecError`], one line naming the field and the fix.
    pub fn lower(&self) -> Result<spec::JailSpec, spec::SpecError> {
        spec::lower(self)
    }

    /// The path handed to execve (or opened for execveat with `exec_fd`).
    pub fn exec_path(&self) -> &str {
        self.cfg.exec_bin.path()
    }
}
