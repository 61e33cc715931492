//! `--version`, and the man page and completions: generated from the option
//! table behind `--help`, committed in `doc/` as generated, every flag in each.

use std::path::Path;
use std::process::Command;

use nsjail_config::getopt::OPTIONS;

const NSJAIL: &str = env!("CARGO_BIN_EXE_nsjail");

#[test]
fn version_prints_the_version_and_the_builds_features() {
    for flag in ["--version", "-V"] {
        let o = Command::new(NSJAIL).arg(flag).output().expect("run nsjail");
        assert_eq!(o.status.code(), Some(0), "{flag}: {o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        let first = out.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("nsjail {} ", env!("CARGO_PKG_VERSION"))),
            "{flag}: {out}"
        );
        for arch in kafel::Arch::ALL {
            assert!(
                out.contains(arch.name()),
                "{flag}: {} missing: {out}",
                arch.name()
            );
        }
        assert!(
            out.contains("kernel API:") && out.contains("clone3"),
            "{out}"
        );
        assert!(o.stderr.is_empty(), "{flag}: nothing on stderr");
    }
    // Like --help, it runs nothing, even with a command after it.
    let o = Command::new(NSJAIL)
        .args(["-V", "--", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

fn doc_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("doc")
}

#[test]
fn committed_docs_are_what_the_option_table_generates() {
    let mut stale = Vec::new();
    for (path, text) in nsjail::docs_files() {
        let on_disk = std::fs::read_to_string(doc_dir().join(path)).unwrap_or_default();
        if on_disk != text {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the option table: run `cargo run -p nsjail --example gen_docs`"
    );
}

/// The line of `text` holding `needle`, or a panic naming what is missing.
fn line_with<'a>(text: &'a str, needle: &str, what: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{what}: no line with {needle:?}"))
}

#[test]
fn every_flag_is_in_help_man_page_and_each_completion() {
    let help = nsjail_config::usage();
    let docs: std::collections::BTreeMap<&str, String> = nsjail::docs_files().into_iter().collect();
    let (man, bash, zsh, fish) = (
        &docs["nsjail.1"],
        &docs["completions/nsjail.bash"],
        &docs["completions/_nsjail"],
        &docs["completions/nsjail.fish"],
    );
    // bash: the word list offered for "-<TAB>".
    let words: Vec<&str> = line_with(bash, "compgen -W '--help", "bash")
        .split(['\'', ' '])
        .collect();
    for o in OPTIONS {
        let long = o.long;
        let value = o.has_arg == nsjail_config::getopt::HasArg::Required;
        // --help: the flag line, then its description.
        let head = match o.short {
            Some(c) => format!(" --{long}|-{c}"),
            None => format!(" --{long}"),
        };
        let i = help
            .lines()
            .position(|l| l.trim_end_matches(" VALUE") == head)
            .unwrap_or_else(|| panic!("--help lacks {head:?}"));
        assert_eq!(
            help.lines().nth(i + 1),
            Some(format!("\t{}", o.help).as_str())
        );

        // man page: `.TP`, the flag line with both spellings, the description.
        let esc = |s: &str| s.replace('-', "\\-");
        let man_long = format!("\\fB\\-\\-{}\\fR", esc(long));
        let lines: Vec<&str> = man
            .lines()
            .skip_while(|l| *l != ".SH OPTIONS")
            .take_while(|l| *l != ".SH EXIT STATUS")
            .collect();
        let i = lines
            .iter()
            .position(|l| {
                l.contains(&man_long)
                    && (l.ends_with(&man_long) || l.contains(&format!("{man_long} ")))
            })
            .unwrap_or_else(|| panic!("man page lacks --{long}"));
        assert_eq!(lines[i - 1], ".TP", "--{long}");
        if let Some(c) = o.short {
            assert!(
                lines[i].starts_with(&format!("\\fB\\-{c}\\fR")),
                "man: -{c} of --{long}: {}",
                lines[i]
            );
        }
        assert_eq!(lines[i].contains("\\fIVALUE\\fR"), value, "man: --{long}");
        assert_eq!(lines[i + 1], esc(o.help), "man: --{long}");

        // bash: offered after "-", and both spellings.
        assert!(
            words.contains(&format!("--{long}").as_str()),
            "bash lacks --{long}"
        );
        if let Some(c) = o.short {
            assert!(words.contains(&format!("-{c}").as_str()), "bash lacks -{c}");
        }

        // zsh: an _arguments spec for both spellings with the description.
        let spec = match (o.short, value) {
            (Some(c), true) => format!("{{-{c}+,--{long}=}}'["),
            (Some(c), false) => format!("{{-{c},--{long}}}'["),
            (None, true) => format!("'*--{long}=["),
            (None, false) => format!("'*--{long}["),
        };
        let l = line_with(zsh, &spec, "zsh");
        // A word of the description no shell's quoting changes.
        let first_word = o
            .help
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .max_by_key(|w| w.len())
            .unwrap();
        assert!(
            l.contains(first_word),
            "zsh: --{long} without its description: {l}"
        );

        // fish: one complete line with both spellings and the description.
        let head = match o.short {
            Some(c) => format!("complete -c nsjail -l {long} -s {c} "),
            None => format!("complete -c nsjail -l {long} "),
        };
        let l = line_with(fish, &head, "fish");
        assert_eq!(
            l.contains(" -r") || l.contains(" -x"),
            value,
            "fish: --{long}: {l}"
        );
        assert!(
            l.contains(first_word),
            "fish: --{long} without its description: {l}"
        );
    }
}

#[test]
fn completions_are_valid_shell() {
    let dir = doc_dir().join("completions");
    // bash -n parses without running; zsh and fish only where installed.
    for (shell, file, args) in [
        ("bash", "nsjail.bash", &["-n"][..]),
        ("zsh", "_nsjail", &["-n"][..]),
        ("fish", "nsjail.fish", &["--no-execute"][..]),
    ] {
        let Ok(o) = Command::new(shell).args(args).arg(dir.join(file)).output() else {
            eprintln!(
                "SKIP completions_are_valid_shell: {shell} is not installed, {file} not parsed"
            );
            continue;
        };
        assert!(o.status.success(), "{shell} {file}: {o:?}");
    }
}
