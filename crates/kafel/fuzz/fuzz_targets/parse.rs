//! Fuzz the whole compiler: any input must give Ok or a positioned Err, never a
//! panic; accepted policies must compile to programs the interpreter can run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for arch in kafel::Arch::ALL {
        let opts = kafel::CompileOptions {
            arch,
            include_paths: Vec::new(),
        };
        match kafel::compile(text, &opts) {
            Ok(prog) => {
                let d = kafel::interp::SeccompData {
                    nr: 0,
                    arch: arch.audit_arch(),
                    ..Default::default()
                };
                assert!(kafel::interp::run(&prog.filter, &d).is_ok());
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
});
