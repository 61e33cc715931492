//! `kafel-compile [--arch x86_64|aarch64|i386|arm] [FILE|-]`: compiles a Kafel policy and
//! prints the BPF program, one instruction per line as `code jt jf k` (decimal).
//! A bad policy prints `LINE:COL: message` on stderr and exits 1; bad usage exits 2.

use std::io::{Read, Write};
use std::process::ExitCode;

use kafel::{compile, Arch, CompileOptions};

const USAGE: &str = "usage: kafel-compile [--arch x86_64|aarch64|i386|arm] [-I DIR]... [FILE|-]";

fn main() -> ExitCode {
    let mut opts = CompileOptions::default();
    let mut input: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--arch" => {
                let Some(name) = args.next() else {
                    eprintln!("kafel-compile: --arch needs a value (x86_64, aarch64, i386 or arm)\n{USAGE}");
                    return ExitCode::from(2);
                };
                let Some(arch) = Arch::from_name(&name) else {
                    eprintln!(
                        "kafel-compile: unknown architecture '{name}'; use x86_64, aarch64, i386 or arm"
                    );
                    return ExitCode::from(2);
                };
                opts.arch = arch;
            }
            "-I" => {
                let Some(dir) = args.next() else {
                    eprintln!("kafel-compile: -I needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                };
                opts.include_paths.push(dir.into());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if input.is_none() && (arg == "-" || !arg.starts_with('-')) => input = Some(arg),
            _ => {
                eprintln!("kafel-compile: unexpected argument '{arg}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let source = match input.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("kafel-compile: cannot read the policy from stdin: {e}");
                return ExitCode::from(2);
            }
            s
        }
        Some(path) => match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kafel-compile: cannot read policy file '{path}': {e}");
                return ExitCode::from(2);
            }
        },
    };
    match compile(&source, &opts) {
        Ok(prog) => {
            let mut out = String::new();
            for ins in &prog.filter {
                out.push_str(&format!("{} {} {} {}\n", ins.code, ins.jt, ins.jf, ins.k));
            }
            if std::io::stdout().write_all(out.as_bytes()).is_err() {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
