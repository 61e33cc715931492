//! Random argv (NUL-separated) into the command-line parser: it must
//! return Ok or Err, never panic. `--config`/`-C` are dropped so the target
//! never reads arbitrary files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<std::ffi::OsString> = data
        .split(|b| *b == 0)
        .map(|a| {
            use std::os::unix::ffi::OsStringExt;
            std::ffi::OsString::from_vec(a.to_vec())
        })
        .filter(|a| {
            let s = a.to_string_lossy();
            match s.strip_prefix("--") {
                // --config and its unambiguous prefixes (--co, --conf, ...).
                Some(long) => {
                    let name = long.split('=').next().unwrap_or("");
                    name.len() < 2 || !"config".starts_with(name)
                }
                // A short cluster that may contain -C.
                None => !(s.starts_with('-') && s.contains('C')),
            }
        })
        .collect();
    let _ = nsjail_config::parse_args(args);
});
