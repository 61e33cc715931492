//! Run a command in a jail from Rust, capture its output and print the run
//! report. As root: `cargo run --release --example embed`.

use std::time::Duration;

fn main() -> Result<(), nsjail::Error> {
    let out = nsjail::Command::new("/bin/sh")
        .args(["-c", "echo hello from pid $$ in $(hostname)"])
        .chroot("/")
        .flags(["--hostname", "jail"])
        .time_limit(Duration::from_secs(10))
        .output()?;
    print!("stdout: {}", String::from_utf8_lossy(&out.stdout));
    if !out.stderr.is_empty() {
        eprint!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!("report: {}", out.report.to_json());
    if out.report.status != nsjail::Status::Exited {
        std::process::exit(1);
    }
    Ok(())
}
