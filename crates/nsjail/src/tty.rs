//! The caller's terminal (ours): when nsjail's stdin is a terminal, a jail
//! on it can change its modes (echo off, raw) and its window size (1x1),
//! which would outlive nsjail. [`TermState`] saves both when the supervisor
//! starts and puts them back when it ends, whichever way it ends (the jail
//! exited, the time limit, SIGINT/SIGTERM/SIGHUP: each returns through the
//! supervisor, which drops it).
//!
//! EXECVE mode (`-Me`) is not covered: nsjail becomes the program itself.

use std::os::fd::AsFd;

use rustix::termios::{self, OptionalActions, Termios, Winsize};

/// The terminal modes and window size of stdin, saved.
#[derive(Debug)]
pub struct TermState {
    termios: Termios,
    winsize: Option<Winsize>,
}

impl TermState {
    /// Saves stdin's modes and window size; None when stdin is not a terminal.
    pub fn save() -> Option<TermState> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if !termios::isatty(fd) {
            return None;
        }
        let termios = termios::tcgetattr(fd).ok()?;
        Some(TermState {
            termios,
            winsize: termios::tcgetwinsize(fd).ok(),
        })
    }

    /// Puts the saved modes and window size back (a failure is logged).
    pub fn restore(&self) {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if let Err(e) = termios::tcsetattr(fd, OptionalActions::Now, &self.termios) {
            log::warn!("restoring the terminal modes of stdin (tcsetattr) failed: {e}");
        }
        if let Some(w) = &self.winsize {
            if let Err(e) = termios::tcsetwinsize(fd, *w) {
                log::warn!("restoring the window size of stdin (TIOCSWINSZ) failed: {e}");
            }
        }
    }
}

impl Drop for TermState {
    fn drop(&mut self) {
        self.restore();
    }
}
