//! The Kafel policy: compiled once in the supervisor, installed in the child
//! as the very last step before exec.

use crate::sys::{self, SysError};

/// Errors preparing the policy.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The policy file could not be read.
    #[error("couldn't read the seccomp policy file '{path}': {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Kafel rejected the policy.
    #[error("Could not compile policy: {0}")]
    Compile(#[from] kafel::Error),
}

/// A compiled filter ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    /// Number of policy rules (for `--check`).
    pub rule_count: usize,
    log: bool,
}

/// Compile `seccomp_policy_file` or the joined `seccomp_string`s; `None`
/// when there is no policy.
pub fn prepare(cfg: &config::NsJailConfig) -> Result<Option<Filter>, SeccompError> {
    let text = if cfg.has_seccomp_policy_file() {
        let path = cfg.seccomp_policy_file();
        std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_string(),
            source,
        })?
    } else if !cfg.seccomp_string.is_empty() {
        cfg.seccomp_string.join("\n")
    } else {
        return Ok(None);
    };
    let prog = kafel::compile(&text, &kafel::CompileOptions::default())?;
    let insns = prog
        .filter
        .iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect();
    Ok(Some(Filter {
        insns,
        rule_count: prog.rule_count,
        log: cfg.seccomp_log(),
    }))
}

/// Install (child). Sets no_new_privs first, as the kernel requires for an
/// unprivileged filter and as nsjail always does.
pub fn install(f: &Filter) -> Result<(), SysError> {
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| sys::err_from("prctl", "PR_SET_NO_NEW_PRIVS", e.into()))?;
    sys::install_seccomp(&f.insns, f.log)
}
