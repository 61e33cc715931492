//! Aggregation of the traced accesses (bounded: the jail chooses the paths)
//! and the `unotify.Stat` text-proto report.

use std::collections::HashMap;

use super::decode::{AccessMode, NetInfo, PathInfo, Record, Touched};
use super::{MAX_ENTRIES, MAX_VARIANTS};

#[derive(Debug, Default)]
struct Variant {
    name: String,
    args: String,
    count: u64,
}

#[derive(Debug)]
struct Entry {
    what: Touched,
    count: u64,
    syscalls: Vec<Variant>,
    /// Variants not kept (over [`MAX_VARIANTS`]).
    dropped: u64,
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    entries: Vec<Entry>,
    index: HashMap<TouchedKey, usize>,
    /// Records not kept (over [`MAX_ENTRIES`]).
    dropped: u64,
}

/// The identity of an entry (everything but the counts).
#[derive(Debug, PartialEq, Eq, Hash)]
enum TouchedKey {
    Fs(PathInfo),
    Net(NetInfo),
}

impl Stats {
    pub(super) fn add(&mut self, r: Record) {
        let key = match &r.what {
            Touched::Fs(p) => TouchedKey::Fs(p.clone()),
            Touched::Net(n) => TouchedKey::Net(n.clone()),
        };
        let idx = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    self.dropped += 1;
                    return;
                }
                self.entries.push(Entry {
                    what: r.what,
                    count: 0,
                    syscalls: Vec::new(),
                    dropped: 0,
                });
                self.index.insert(key, self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[idx];
        e.count = e.count.saturating_add(1);
        let at = e
            .syscalls
            .iter()
            .position(|v| v.name == r.syscall && v.args == r.args);
        match at {
            Some(i) => e.syscalls[i].count = e.syscalls[i].count.saturating_add(1),
            None if e.syscalls.len() < MAX_VARIANTS => e.syscalls.push(Variant {
                name: r.syscall,
                args: r.args,
                count: 1,
            }),
            None => e.dropped += 1,
        }
    }

    /// The `unotify.Stat` text proto: every `fs_access`, then every
    /// `net_access`, fields in field-number order (as protobuf prints them).
    pub(super) fn render(&self) -> String {
        let mut o = String::new();
        for e in self
            .entries
            .iter()
            .filter(|e| matches!(e.what, Touched::Fs(_)))
        {
            let Touched::Fs(p) = &e.what else { continue };
            o.push_str("fs_access {\n");
            render_path_fields(&mut o, "  ", p, Some(e));
            o.push_str("}\n");
        }
        for e in self
            .entries
            .iter()
            .filter(|e| matches!(e.what, Touched::Net(_)))
        {
            let Touched::Net(n) = &e.what else { continue };
            o.push_str("net_access {\n");
            o.push_str(&format!("  type: {}\n", n.kind.name()));
            if !n.endpoint.is_empty() {
                o.push_str(&format!("  endpoint: {}\n", quote(&n.endpoint)));
            }
            if let Some(p) = &n.socket_path {
                o.push_str("  socket_path {\n");
                render_path_fields(&mut o, "    ", p, None);
                o.push_str("  }\n");
            }
            o.push_str(&format!("  count: {}\n", e.count));
            render_variants(&mut o, e);
            if let Some(port) = n.port {
                o.push_str(&format!("  port: {port}\n"));
            }
            o.push_str("}\n");
        }
        if self.dropped > 0 {
            o.push_str(&format!(
                "# {} further accesses not recorded (more than {MAX_ENTRIES} distinct entries)\n",
                self.dropped
            ));
        }
        o
    }
}

fn render_variants(o: &mut String, e: &Entry) {
    for v in &e.syscalls {
        o.push_str("  syscall {\n");
        o.push_str(&format!("    name: {}\n", quote(&v.name)));
        if !v.args.is_empty() {
            o.push_str(&format!("    args: {}\n", quote(&v.args)));
        }
        o.push_str(&format!("    count: {}\n", v.count));
        o.push_str("  }\n");
    }
    if e.dropped > 0 {
        o.push_str(&format!(
            "  # {} further calls with other arguments not itemised\n",
            e.dropped
        ));
    }
}

fn render_path_fields(o: &mut String, ind: &str, p: &PathInfo, e: Option<&Entry>) {
    o.push_str(&format!("{ind}path: {}\n", quote(&p.path)));
    o.push_str(&format!("{ind}jail_type: {}\n", p.jail.name()));
    o.push_str(&format!("{ind}main_type: {}\n", p.main.name()));
    let mode = match p.mode {
        AccessMode::Unspecified => None,
        AccessMode::RdOnly => Some("RDONLY"),
        AccessMode::WrOnly => Some("WRONLY"),
        AccessMode::RdWr => Some("RDWR"),
    };
    if let Some(m) = mode {
        o.push_str(&format!("{ind}mode: {m}\n"));
    }
    if let Some(e) = e {
        o.push_str(&format!("{ind}count: {}\n", e.count));
        render_variants(o, e);
    }
    o.push_str(&format!("{ind}exists_in_jail: {}\n", p.jail.exists()));
    o.push_str(&format!("{ind}exists_in_main: {}\n", p.main.exists()));
}

/// A text-proto string literal (C escapes; other bytes as they are).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\'' => q.push_str("\\'"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\{:03o}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::super::decode::{FileKind, NetKind};
    use super::*;

    fn fs(path: &str, mode: AccessMode, syscall: &str, args: &str) -> Record {
        Record {
            what: Touched::Fs(PathInfo {
                path: path.into(),
                jail: FileKind::Regular,
                main: FileKind::Nonexistent,
                mode,
            }),
            syscall: syscall.into(),
            args: args.into(),
        }
    }

    #[test]
    fn report_aggregates_and_renders_text_proto() {
        let mut s = Stats::default();
        s.add(fs(
            "/etc/passwd",
            AccessMode::RdOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(fs(
            "/etc/passwd",
            AccessMode::RdOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(fs("/etc/passwd", AccessMode::RdOnly, "openat", "dirfd=3 "));
        s.add(fs(
            "/etc/passwd",
            AccessMode::WrOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(Record {
            what: Touched::Net(NetInfo {
                kind: NetKind::Ipv4,
                endpoint: "127.0.0.1".into(),
                port: Some(80),
                socket_path: None,
            }),
            syscall: "connect".into(),
            args: "type=SOCK_STREAM (IPPROTO_TCP) ".into(),
        });
        let r = s.render();
        let expect = "fs_access {\n  path: \"/etc/passwd\"\n  jail_type: REGULAR\n  main_type: NONEXISTENT\n  mode: RDONLY\n  count: 3\n  syscall {\n    name: \"openat\"\n    args: \"dirfd=AT_FDCWD \"\n    count: 2\n  }\n  syscall {\n    name: \"openat\"\n    args: \"dirfd=3 \"\n    count: 1\n  }\n  exists_in_jail: true\n  exists_in_main: false\n}\n";
        assert!(r.starts_with(expect), "{r}");
        assert!(r.contains("  mode: WRONLY\n  count: 1\n"), "{r}");
        assert!(
            r.contains("net_access {\n  type: IPV4\n  endpoint: \"127.0.0.1\"\n  count: 1\n  syscall {\n    name: \"connect\"\n    args: \"type=SOCK_STREAM (IPPROTO_TCP) \"\n    count: 1\n  }\n  port: 80\n}\n"),
            "{r}"
        );
    }

    #[test]
    fn report_is_bounded() {
        let mut s = Stats::default();
        for i in 0..MAX_ENTRIES + 5 {
            s.add(fs(&format!("/f{i}"), AccessMode::RdOnly, "openat", ""));
        }
        for i in 0..MAX_VARIANTS + 3 {
            s.add(fs(
                "/f0",
                AccessMode::RdOnly,
                "openat",
                &format!("dirfd={i} "),
            ));
        }
        assert_eq!(s.entries.len(), MAX_ENTRIES);
        assert_eq!(s.dropped, 5);
        assert_eq!(s.entries[0].syscalls.len(), MAX_VARIANTS);
        let r = s.render();
        assert!(r.contains("# 5 further accesses not recorded"), "tail");
        assert!(r.contains("further calls with other arguments not itemised"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\001é\"");
    }
}
