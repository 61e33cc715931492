//! `cargo bench -p kafel`: compile time of a 300-rule policy with argument checks,
//! and the mean number of BPF instructions executed per syscall (over 100 syscall
//! numbers spread over the x86_64 table) for the seed policy and a 150-syscall
//! allow-list. Plain `std::time` timing; no extra dependency needed for this.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kafel::interp::{run_counted, SeccompData};
use kafel::{compile, syscall_arg_names, syscalls, Arch, CompileOptions};

const ARCH: Arch = Arch::X86_64;

fn opts() -> CompileOptions {
    CompileOptions {
        arch: ARCH,
        include_paths: Vec::new(),
    }
}

/// 300 rules on distinct syscalls, each with an argument check.
fn policy_300() -> String {
    let mut rules = Vec::new();
    let mut extra = 0;
    for (i, (name, _)) in syscalls(ARCH).enumerate() {
        if rules.len() == 300 {
            break;
        }
        let name = name.trim_start_matches('_');
        let args = syscall_arg_names(ARCH, name).unwrap_or_default();
        match args.iter().find(|a| !a.starts_with('_')) {
            Some(a) => rules.push(format!("{name} {{ {a} == {i} || {a} > 0x100000000 }}")),
            None => {
                extra += 1;
                rules.push(format!("{name}(x, y) {{ x != {i} && y < {extra} }}"))
            }
        }
    }
    format!("ALLOW {{ {} }} DEFAULT ERRNO(1)", rules.join(",\n"))
}

/// 150 syscalls: the first 150 by number (`spread == false`, one range), or every
/// other syscall of the first 300 (`spread == true`, ~300 ranges: the hard case).
fn allow_list_150(spread: bool) -> String {
    let step = if spread { 2 } else { 1 };
    let names: Vec<&str> = syscalls(ARCH)
        .step_by(step)
        .take(150)
        .map(|(n, _)| n.trim_start_matches('_'))
        .collect();
    format!("ALLOW {{ {} }} DEFAULT KILL", names.join(", "))
}

fn seed() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tooljet-python-full.policy"
    ))
    .expect("seed fixture")
}

/// 100 syscall numbers spread evenly over the table.
fn sample_numbers() -> Vec<u32> {
    let all: Vec<u32> = syscalls(ARCH).map(|(_, nr)| nr).collect();
    (0..100).map(|i| all[i * all.len() / 100]).collect()
}

fn time_compile(name: &str, policy: &str) {
    let o = opts();
    let prog = compile(policy, &o).expect("compiles");
    let mut samples = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while samples.len() < 20 || (Instant::now() < deadline && samples.len() < 2000) {
        let start = Instant::now();
        black_box(compile(black_box(policy), &o).unwrap());
        samples.push(start.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "compile {name}: {} rules, {} instructions; median {:?}, mean {:?}, min {:?} over {} runs",
        prog.rule_count,
        prog.filter.len(),
        samples[samples.len() / 2],
        mean,
        samples[0],
        samples.len()
    );
}

/// Mean and worst instructions executed over `sample_numbers()`.
fn executed(policy: &str) -> (usize, f64, usize) {
    let prog = compile(policy, &opts()).expect("compiles");
    let numbers = sample_numbers();
    let (mut total, mut worst) = (0usize, 0usize);
    for &nr in &numbers {
        let d = SeccompData {
            nr: nr as i32,
            arch: ARCH.audit_arch(),
            instruction_pointer: 0,
            args: [3, 0x1000, 4096, 0, 0, 0],
        };
        let out = run_counted(&prog.filter, &d).expect("runs");
        total += out.executed;
        worst = worst.max(out.executed);
    }
    (
        prog.filter.len(),
        total as f64 / numbers.len() as f64,
        worst,
    )
}

/// Also prints the same policy under `#pragma x32` (no x32 guard): the cost of
/// the guard is the difference.
fn mean_instructions(name: &str, policy: &str) {
    let (len, mean, worst) = executed(policy);
    let (_, mean_x32, worst_x32) = executed(&format!("#pragma x32\n{policy}"));
    println!(
        "execute {name}: {len} instructions in the program; mean {mean:.2}, worst {worst} \
         instructions per syscall over {} syscall numbers (without the x32 guard: mean \
         {mean_x32:.2}, worst {worst_x32})",
        sample_numbers().len()
    );
}

fn main() {
    // `cargo test --benches` runs this with `--test`/`--bench`; a quick pass is enough then.
    let p300 = policy_300();
    time_compile("300-rule policy with argument checks", &p300);
    time_compile("seed policy", &seed());
    time_compile(
        "150-syscall allow-list (every other syscall)",
        &allow_list_150(true),
    );
    mean_instructions("seed policy", &seed());
    mean_instructions(
        "150-syscall allow-list (first 150 numbers)",
        &allow_list_150(false),
    );
    mean_instructions(
        "150-syscall allow-list (every other syscall)",
        &allow_list_150(true),
    );
    mean_instructions("300-rule policy with argument checks", &p300);
}
