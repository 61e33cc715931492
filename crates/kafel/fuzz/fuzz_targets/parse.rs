//! Fuzz the whole compiler: any input must give Ok or a positioned Err, never a
//! panic; accepted policies must compile to programs the interpreter can run,
//! deciding like the reference evaluation (also for x32 numbers on x86_64,
//! which get the foreign-ABI verdict unless `#pragma x32`), and every warning
//! must carry a position. Seeds worth adding to a corpus: `ALLOW { read ON
//! { x86_64, arm } { fd == 1 } }`, `#pragma x32`, `ERRNO(65535) { futex_wait {
//! flags == 1 } }`.
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
                for w in &prog.warnings {
                    assert!(w.line > 0 && !w.message.is_empty(), "{w:?}");
                }
                let policy = kafel::parse(text, &opts).expect("compiled, so it parses");
                for nr in [0, 1, 39, 0x3fff_ffff, 0x4000_0027, -1i32 as u32] {
                    let d = kafel::interp::SeccompData {
                        nr: nr as i32,
                        arch: arch.audit_arch(),
                        ..Default::default()
                    };
                    let got = kafel::interp::run(&prog.filter, &d).expect("runs");
                    assert_eq!(got, policy.evaluate(&d), "nr {nr:#x}");
                    if arch == kafel::Arch::X86_64 && !policy.x32_rules && nr >= 0x4000_0000 {
                        assert_eq!(got, kafel::RET_KILL_THREAD, "x32 number {nr:#x}");
                    }
                }
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
});
