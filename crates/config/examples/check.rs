//! Prints what `nsjail --check` would print for the given nsjail arguments,
//! e.g. `cargo run -p nsjail-config --example check -- --config x.cfg -- /bin/true`.
//! Exit codes as nsjail: 0 valid, 255 invalid (usage on stderr for syntax errors).

use nsjail_config::{check_report, parse_args, usage, HostFacts, Parsed};

fn main() {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => print!("{}", usage()),
        Ok(Parsed::Version) => println!("nsjail-config {}", env!("CARGO_PKG_VERSION")),
        Ok(Parsed::Run(jail)) => {
            let host = HostFacts::probe_for(&jail.cfg);
            print!("{}", check_report(&jail, &host, None, &[]));
        }
        Err(e) => {
            if e.is_usage() {
                eprint!("{}", usage());
            }
            eprintln!("{e}");
            std::process::exit(255);
        }
    }
}
