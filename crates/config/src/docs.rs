//! The man page and the bash, zsh and fish completions, generated from
//! [`OPTIONS`], the table `--help` ([`crate::usage`]) and the parser use:
//! a flag added there appears everywhere, with the same description.
//!
//! Why not `clap_mangen`/`clap_complete`: they take a `clap::Command`, which
//! would be a second description of every flag beside [`OPTIONS`] (clap does
//! not parse nsjail's command line; see [`crate::getopt`]). The formats are
//! small enough to write from the table directly.
//!
//! The generated files ship in the Debian package; `crates/nsjail/doc/` holds
//! them, and a test there checks they are what this module generates now.

use crate::getopt::{HasArg, OptSpec, OPTIONS};

/// What a flag's value is, for completion: a fixed set of words, a file,
/// a directory, or anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A switch: no value.
    None,
    /// One of these words.
    Words(&'static [&'static str]),
    /// A path to a file.
    File,
    /// A path to a directory.
    Dir,
    /// Free text (numbers, maps, mount specs).
    Any,
}

const RLIMIT_WORDS: &[&str] = &["max", "hard", "def", "soft", "inf"];

/// The kind of value `spec` takes.
pub fn value_kind(spec: &OptSpec) -> ValueKind {
    if spec.has_arg == HasArg::No {
        return ValueKind::None;
    }
    match spec.long {
        "mode" => ValueKind::Words(&["l", "o", "e", "r"]),
        "experimental_mnt" => ValueKind::Words(&["auto", "new", "old"]),
        "macvlan_vs_mo" => ValueKind::Words(&["private", "vepa", "bridge", "passthru"]),
        l if l.starts_with("rlimit_") => ValueKind::Words(RLIMIT_WORDS),
        "config"
        | "exec_file"
        | "log"
        | "seccomp_policy"
        | "run_report"
        | "seccomp_unotify_report" => ValueKind::File,
        "chroot"
        | "cgroup_mem_mount"
        | "cgroup_pids_mount"
        | "cgroup_net_cls_mount"
        | "cgroup_cpu_mount"
        | "cgroupv2_mount" => ValueKind::Dir,
        _ => ValueKind::Any,
    }
}

/// Escapes text for a roff line (backslashes, hyphens, a leading `.`/`'`).
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// `nsjail.1`: the man page.
pub fn man_page(version: &str) -> String {
    let mut m = String::new();
    m.push_str(&format!(
        ".TH NSJAIL 1 \"\" \"nsjail {}\" \"User Commands\"\n",
        roff(version)
    ));
    m.push_str(".SH NAME\nnsjail \\- run a program isolated by Linux namespaces, cgroups, rlimits and seccomp\\-bpf\n");
    m.push_str(".SH SYNOPSIS\n.B nsjail\n[\\fIoptions\\fR] \\fB\\-\\-\\fR \\fIpath_to_command\\fR [\\fIargs\\fR]\n.br\n.B nsjail\n\\fB\\-\\-config\\fR \\fIFILE\\fR [\\fIoptions\\fR] [\\fB\\-\\-\\fR \\fIpath_to_command\\fR [\\fIargs\\fR]]\n");
    m.push_str(".SH DESCRIPTION\n");
    m.push_str(&roff(
        "A re-implementation of Google's nsjail with the same command-line flags, config files (protobuf text format or ProtoJSON) and exit codes. The command is run with execv (no PATH search): give an absolute path.",
    ));
    m.push_str("\n.PP\n");
    m.push_str(&roff(
        "Options are read in order: --config replaces every setting given before it, except the log settings (-l, -L, -v, -q, -Q), which on the command line always win over the config's.",
    ));
    m.push_str("\n.SH OPTIONS\n");
    for o in OPTIONS {
        m.push_str(".TP\n");
        let arg = if o.has_arg == HasArg::Required {
            " \\fIVALUE\\fR"
        } else {
            ""
        };
        match o.short {
            Some(c) => m.push_str(&format!(
                "\\fB\\-{c}\\fR{arg}, \\fB\\-\\-{}\\fR{arg}\n",
                roff(o.long)
            )),
            None => m.push_str(&format!("\\fB\\-\\-{}\\fR{arg}\n", roff(o.long))),
        }
        m.push_str(&roff(o.help));
        m.push('\n');
    }
    m.push_str(".SH EXIT STATUS\n");
    m.push_str(&roff(
        "The program's exit code; 128+N when it was killed by signal N (137 at the time limit, 159 for a seccomp kill); 255 when the jail could not be set up or the command line or config is invalid (one line says why); 0 for --help, --version and a valid --check.",
    ));
    m.push_str("\n.SH EXAMPLES\n");
    for (what, cmd) in [
        (
            "Run /bin/echo once, with the host's root read-only:",
            "nsjail -Mo --chroot / -- /bin/echo ABC",
        ),
        (
            "Wait on port 31337 for connections and run /bin/sh for each:",
            "nsjail -Ml --port 31337 --chroot / -- /bin/sh -i",
        ),
        (
            "Load a config, then override its time limit:",
            "nsjail --config jail.cfg -t 5 -- /usr/bin/python3 script.py",
        ),
        (
            "Show what a config will do, without running it:",
            "nsjail --check --config jail.cfg -- /usr/bin/python3",
        ),
    ] {
        m.push_str(&format!(
            ".PP\n{}\n.PP\n.RS\n{}\n.RE\n",
            roff(what),
            roff(cmd)
        ));
    }
    m.push_str(".SH FILES\n");
    m.push_str(&roff(
        "/usr/share/doc/nsjail/examples/: example configs (the Debian package).",
    ));
    m.push_str("\n.SH SEE ALSO\n.BR namespaces (7),\n.BR cgroups (7),\n.BR seccomp (2),\n.BR getrlimit (2)\n");
    m
}

fn long_flags() -> Vec<String> {
    let mut v = Vec::new();
    for o in OPTIONS {
        v.push(format!("--{}", o.long));
        if let Some(c) = o.short {
            v.push(format!("-{c}"));
        }
    }
    v
}

/// `nsjail.bash`: bash completion (`complete -F _nsjail nsjail`).
pub fn bash_completion() -> String {
    let mut b = String::from(
        "# bash completion for nsjail; generated from nsjail's option table, do not edit\n\
         _nsjail() {\n    local cur prev i\n    cur=${COMP_WORDS[COMP_CWORD]}\n    prev=${COMP_WORDS[COMP_CWORD-1]}\n    \
         # after --: the command (an absolute path) and its arguments\n    \
         for ((i = 1; i < COMP_CWORD; i++)); do\n        \
         if [[ ${COMP_WORDS[i]} == -- ]]; then\n            \
         COMPREPLY=($(compgen -f -- \"$cur\"))\n            return\n        fi\n    done\n    \
         case $prev in\n",
    );
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for o in OPTIONS {
        let action = match value_kind(o) {
            ValueKind::None => continue,
            ValueKind::Words(w) => {
                format!("COMPREPLY=($(compgen -W '{}' -- \"$cur\"))", w.join(" "))
            }
            ValueKind::File => "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string(),
            ValueKind::Dir => "COMPREPLY=($(compgen -d -- \"$cur\"))".to_string(),
            ValueKind::Any => "COMPREPLY=()".to_string(),
        };
        let mut pats = vec![format!("--{}", o.long)];
        if let Some(c) = o.short {
            pats.push(format!("-{c}"));
        }
        match groups.iter_mut().find(|(a, _)| *a == action) {
            Some((_, p)) => p.extend(pats),
            None => groups.push((action, pats)),
        }
    }
    for (action, pats) in groups {
        b.push_str(&format!(
            "        {})\n            {action}\n            return ;;\n",
            pats.join("|")
        ));
    }
    b.push_str("    esac\n    if [[ $cur == -* ]]; then\n        COMPREPLY=($(compgen -W '");
    b.push_str(&long_flags().join(" "));
    b.push_str(
        "' -- \"$cur\"))\n    else\n        COMPREPLY=($(compgen -f -- \"$cur\"))\n    fi\n}\ncomplete -F _nsjail nsjail\n",
    );
    b
}

/// Escapes a description for zsh's `_arguments` (inside single quotes).
fn zsh_desc(text: &str) -> String {
    text.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

/// `_nsjail`: zsh completion (`#compdef nsjail`).
pub fn zsh_completion() -> String {
    let mut z = String::from(
        "#compdef nsjail\n# zsh completion for nsjail; generated from nsjail's option table, do not edit\n\n_arguments -s -S \\\n",
    );
    for o in OPTIONS {
        let desc = zsh_desc(o.help);
        let value = match value_kind(o) {
            ValueKind::None => String::new(),
            ValueKind::Words(w) => format!(":value:({})", w.join(" ")),
            ValueKind::File => ":file:_files".to_string(),
            ValueKind::Dir => ":directory:_files -/".to_string(),
            ValueKind::Any => ":value: ".to_string(),
        };
        let (s_suf, l_suf) = if o.has_arg == HasArg::Required {
            ("+", "=")
        } else {
            ("", "")
        };
        // '*': every option may be given more than once (getopt_long).
        match o.short {
            Some(c) => z.push_str(&format!(
                "  '*'{{-{c}{s_suf},--{}{l_suf}}}'[{desc}]{value}' \\\n",
                o.long
            )),
            None => z.push_str(&format!("  '*--{}{l_suf}[{desc}]{value}' \\\n", o.long)),
        }
    }
    z.push_str("  '*::command and arguments:_normal'\n");
    z
}

/// `nsjail.fish`: fish completion.
pub fn fish_completion() -> String {
    let mut f = String::from(
        "# fish completion for nsjail; generated from nsjail's option table, do not edit\n",
    );
    for o in OPTIONS {
        let mut line = format!("complete -c nsjail -l {}", o.long);
        if let Some(c) = o.short {
            line.push_str(&format!(" -s {c}"));
        }
        match value_kind(o) {
            ValueKind::None => {}
            ValueKind::Words(w) => line.push_str(&format!(" -x -a '{}'", w.join(" "))),
            ValueKind::File | ValueKind::Dir => line.push_str(" -r -F"),
            ValueKind::Any => line.push_str(" -x"),
        }
        line.push_str(&format!(
            " -d '{}'\n",
            o.help.replace('\\', "\\\\").replace('\'', "\\'")
        ));
        f.push_str(&line);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_what_troff_would_eat() {
        assert_eq!(roff("a-b"), "a\\-b");
        assert_eq!(roff(".x"), "\\&.x");
        assert_eq!(roff("'x"), "\\&'x");
        assert_eq!(roff("c:\\d"), "c:\\ed");
    }

    #[test]
    fn value_kinds_follow_the_table() {
        let by = |l| crate::getopt::by_long(l).unwrap();
        assert_eq!(value_kind(by("help")), ValueKind::None);
        assert_eq!(value_kind(by("config")), ValueKind::File);
        assert_eq!(value_kind(by("chroot")), ValueKind::Dir);
        assert_eq!(value_kind(by("rlimit_cpu")), ValueKind::Words(RLIMIT_WORDS));
        assert_eq!(value_kind(by("time_limit")), ValueKind::Any);
        // Every switch is None, every option with a value is not.
        for o in OPTIONS {
            assert_eq!(
                value_kind(o) == ValueKind::None,
                o.has_arg == HasArg::No,
                "{}",
                o.long
            );
        }
    }
}
