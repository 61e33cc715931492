//! Property: no argv and no config bytes make the loaders panic; they
//! return Ok or an error (the same invariant the cargo-fuzz targets check).

use std::path::Path;

use nsjail_config::getopt::OPTIONS;
use nsjail_config::{load_config_bytes, parse_args};
use proptest::prelude::*;

const SEED: &str = include_str!("fixtures/tooljet-python-full.cfg");
const JSON: &str = include_str!("fixtures/equiv.json");

fn arg() -> impl Strategy<Value = String> {
    let flags: Vec<String> = OPTIONS
        .iter()
        .flat_map(|o| {
            let mut v = vec![format!("--{}", o.long)];
            if let Some(c) = o.short {
                v.push(format!("-{c}"));
            }
            v
        })
        .filter(|f| f != "--config" && f != "-C")
        .collect();
    prop_oneof![
        prop::sample::select(flags),
        "[-a-zA-Z0-9:=/,._ ]{0,12}",
        Just("--".to_string()),
        Just("-".to_string()),
        "-[A-Za-z?]{1,4}[0-9]{0,3}",
        "--[a-z_]{1,10}(=[a-z0-9]{0,4})?",
        any::<String>(),
    ]
}

proptest! {
    // Failing cases are saved next to this file (tests/<name>.proptest-regressions)
    // and replayed first: the default looks for a lib.rs above tests/ and
    // warns on every case when it finds none.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn argv_never_panics(args in prop::collection::vec(arg(), 0..12)) {
        let _ = parse_args(args);
    }

    #[test]
    fn config_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = load_config_bytes(Path::new("fuzz.cfg"), &bytes);
    }

    #[test]
    fn mutated_configs_never_panic(
        which in 0usize..2,
        cut in 0usize..4000,
        at in 0usize..4000,
        insert in "[{}<>:;,\\[\\]\"'#\\\\a-z0-9 \n-]{0,6}",
    ) {
        let base = if which == 0 { SEED } else { JSON };
        let mut b = base.as_bytes().to_vec();
        let at = at % (b.len() + 1);
        b.splice(at..at, insert.bytes());
        let cut = cut % (b.len() + 1);
        b.truncate(b.len() - cut / 8);
        let _ = load_config_bytes(Path::new("fuzz.cfg"), &b);
    }
}
