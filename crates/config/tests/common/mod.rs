//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use nsjail_config::{parse_args, ConfigError, Jail, Parsed};

/// Path of a file in tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Same, as a String for argv.
pub fn fx(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

/// Parses argv (without argv[0]) and expects a jail.
pub fn jail(args: &[&str]) -> Jail {
    match parse_args(args.iter().copied()) {
        Ok(Parsed::Run(j)) => *j,
        Ok(Parsed::Help) => panic!("unexpected Help for {args:?}"),
        Ok(Parsed::Version) => panic!("unexpected Version for {args:?}"),
        Err(e) => panic!("unexpected error for {args:?}: {e}"),
    }
}

/// Parses argv and expects an error.
pub fn err(args: &[&str]) -> ConfigError {
    match parse_args(args.iter().copied()) {
        Ok(_) => panic!("expected an error for {args:?}"),
        Err(e) => e,
    }
}

/// A temporary file with the given content (removed on drop).
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str, content: &[u8]) -> TempFile {
        let dir = std::env::temp_dir().join(format!(
            "nsjail-config-test-{}-{}",
            std::process::id(),
            name
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, content).expect("write temp file");
        TempFile(p)
    }

    pub fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
