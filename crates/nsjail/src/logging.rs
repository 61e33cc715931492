//! The `log` backend writing nsjail's line format.
//!
//! `[I][2026-11-23T22:59:01+0000] message` for INFO;
//! `[W][2026-11-23T22:59:01+0000][pid] module():line message` for
//! DEBUG/WARNING/ERROR/FATAL. The destination is a close-on-exec duplicate
//! of the configured fd (default 2), or an `O_APPEND` log file. `log_fd: -1`
//! silences everything except the single fatal line, which then goes to
//! stderr (nsjail prints nothing at all there; we consciously differ).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use crate::sys;

/// The effective level: nsjail's five levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-v`
    Debug,
    /// default
    Info,
    /// `-q`
    Warning,
    /// errors only
    Error,
    /// `-Q`: only the fatal line
    Fatal,
}

/// Where and what to log.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Log fd (`-L`, `log_fd`); `Some(-1)` silences logging.
    pub fd: Option<i32>,
    /// Log file (`-l`, `log_file`).
    pub file: Option<String>,
    /// Minimum level; `None` = INFO.
    pub level: Option<Level>,
}

struct Backend {
    out: Option<OwnedFd>,
    level: Level,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

struct Facade;

impl log::Log for Facade {
    fn enabled(&self, m: &log::Metadata) -> bool {
        match BACKEND.get() {
            Some(b) => b.out.is_some() && level_of(m.level()) >= b.level,
            None => m.level() <= log::Level::Warn,
        }
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let lvl = level_of(record.level());
        let module = record
            .module_path()
            .and_then(|m| m.rsplit("::").next())
            .unwrap_or("nsjail");
        let line = format_line(
            lvl,
            module,
            record.line().unwrap_or(0),
            &record.args().to_string(),
        );
        emit(&line);
    }

    fn flush(&self) {}
}

fn level_of(l: log::Level) -> Level {
    match l {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warning,
        log::Level::Info => Level::Info,
        log::Level::Debug | log::Level::Trace => Level::Debug,
    }
}

fn letter(l: Level) -> char {
    match l {
        Level::Debug => 'D',
        Level::Info => 'I',
        Level::Warning => 'W',
        Level::Error => 'E',
        Level::Fatal => 'F',
    }
}

/// Current local time as `YYYY-MM-DDTHH:MM:SS+ZZZZ`.
pub fn timestamp() -> String {
    let (tm, off) = sys::localtime_now();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        sign,
        off / 3600,
        (off % 3600) / 60
    )
}

/// One complete log line (with trailing newline) in nsjail's format.
pub fn format_line(lvl: Level, func: &str, line: u32, msg: &str) -> String {
    if lvl == Level::Info {
        format!("[{}][{}] {}\n", letter(lvl), timestamp(), msg)
    } else {
        format!(
            "[{}][{}][{}] {}():{} {}\n",
            letter(lvl),
            timestamp(),
            std::process::id(),
            func,
            line,
            msg
        )
    }
}

fn emit(line: &str) {
    let stderr = std::io::stderr();
    let fd = match BACKEND.get() {
        Some(b) => match &b.out {
            Some(o) => o.as_fd(),
            None => return,
        },
        None => stderr.as_fd(),
    };
    let _ = sys::write_all(fd, line.as_bytes());
}

/// Install the backend. Called once, as soon as the effective log settings
/// are known. A log file that cannot be opened falls back to fd 2 (as nsjail).
pub fn init(s: &LogSettings) {
    let level = s.level.unwrap_or(Level::Info);
    let out = if s.fd == Some(-1) {
        None
    } else if let Some(f) = &s.file {
        match sys::open(f, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o640) {
            Ok(fd) => sys::dup_cloexec(fd.as_fd(), 3).ok().or(Some(fd)),
            Err(e) => {
                let _ = std::io::stderr().write_all(
                    format_line(
                        Level::Warning,
                        "init",
                        line!(),
                        &format!("Couldn't open the log file: {e}; logging to stderr"),
                    )
                    .as_bytes(),
                );
                sys::dup_cloexec(std::io::stderr().as_fd(), 3).ok()
            }
        }
    } else {
        sys::dup_number_cloexec(s.fd.unwrap_or(2), 3).ok()
    };
    let _ = BACKEND.set(Backend { out, level });
    let _ = log::set_logger(&Facade);
    log::set_max_level(match level {
        Level::Debug => log::LevelFilter::Debug,
        Level::Info => log::LevelFilter::Info,
        Level::Warning => log::LevelFilter::Warn,
        Level::Error => log::LevelFilter::Error,
        Level::Fatal => log::LevelFilter::Off,
    });
}

/// The raw fd logs go to, if any (kept open in the child until exec).
pub fn log_fd() -> Option<RawFd> {
    BACKEND
        .get()
        .and_then(|b| b.out.as_ref().map(|o| o.as_raw_fd()))
}

/// Write the one fatal line (`[F]...`). Shown at every level; when logging
/// is silenced (`log_fd: -1`) or not yet set up, it goes to stderr.
pub fn fatal(func: &str, line: u32, msg: &str) {
    let text = format_line(Level::Fatal, func, line, msg);
    match BACKEND.get().and_then(|b| b.out.as_ref()) {
        Some(o) => {
            let _ = sys::write_all(o.as_fd(), text.as_bytes());
        }
        None => {
            let _ = sys::write_all(std::io::stderr().as_fd(), text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_have_no_pid_or_location() {
        let l = format_line(Level::Info, "f", 1, "hello");
        assert!(l.starts_with("[I]["), "{l}");
        assert!(l.ends_with("] hello\n"), "{l}");
        assert_eq!(l.matches('[').count(), 2, "{l}");
    }

    #[test]
    fn warning_lines_have_pid_and_location() {
        let l = format_line(Level::Warning, "child", 42, "bad");
        let pid = format!("[{}] child():42 bad\n", std::process::id());
        assert!(l.starts_with("[W]["), "{l}");
        assert!(l.ends_with(&pid), "{l}");
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        // 2026-11-23T22:59:01+0000
        assert_eq!(t.len(), 24, "{t}");
        assert_eq!(&t[10..11], "T");
        assert!(t[19..20] == *"+" || t[19..20] == *"-", "{t}");
    }
}
