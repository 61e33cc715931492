//! Random bytes as a config file (text format or JSON): the loader must
//! return Ok or Err, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nsjail_config::load_config_bytes(std::path::Path::new("fuzz.cfg"), data);
});
