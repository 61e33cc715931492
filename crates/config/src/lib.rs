//! nsjail's configuration: the schema (generated from `proto/config.proto`),
//! loading from text format and ProtoJSON, command-line parsing, validation.
//!
//! The one value the runtime consumes is [`Jail`]: the effective
//! `NsJailConfig` after the command line and any `--config` files were
//! applied in nsjail's order, with the implicit parts filled in (the
//! `--chroot` bind first in `mount`, the `/proc` mount last, default uid/gid
//! maps, the effective log settings in `log_fd`/`log_file`/`log_level`,
//! `exec_bin.path` set), plus the few settings that live outside the proto.

use std::path::PathBuf;

/// The generated protobuf messages (`NsJailConfig`, `MountPt`, `IdMap`, ...).
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto/mod.rs"));
}

pub use proto::config::*;

/// Which mount API the runtime should use (`--experimental_mnt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountApi {
    /// mount(2) (nsjail's default).
    #[default]
    Old,
    /// fsopen/open_tree/move_mount.
    New,
    /// New on kernels >= 6.3, else old.
    Auto,
}

/// A fully parsed and validated jail description.
#[derive(Debug, Clone, Default)]
pub struct Jail {
    /// The effective config (see the crate docs for what is filled in).
    pub cfg: NsJailConfig,
    /// The argv given to execve; argv[0] included (`exec_bin.arg0` applied).
    pub argv: Vec<String>,
    /// `--chroot DIR`, if given (already present as the first mount).
    pub chroot: Option<String>,
    /// `--experimental_mnt`.
    pub mount_api: MountApi,
    /// `--run_report FILE` (ours): JSON account of each run.
    pub run_report: Option<PathBuf>,
    /// `--check` (ours): print the effective jail and its warnings, run nothing.
    pub check_only: bool,
}

impl Jail {
    /// The path handed to execve (or opened for execveat with `exec_fd`).
    pub fn exec_path(&self) -> &str {
        self.cfg.exec_bin.path()
    }
}
