//! The launch protocol: the messages between the supervisor and a jail's
//! child over their socketpair, and both ends of it (ours; nsjail uses a
//! similar byte protocol).
//!
//! ```text
//! supervisor                                   child (after clone)
//!                                               (user_net NSTUN only:)
//!   ◀───────────────────── Tun (SCM_RIGHTS) ──  its TUN device
//!   net, cgroup, id maps, user net
//!   ── Proceed ───────────────────────────────▶ sets itself up
//!                                               (RERUN pre-launch only:)
//!   ◀──────────────────────────────── Parked ──
//!   ── Release / ReleaseTraced ──────────────▶
//!                                               (traced: tracing filter)
//!   ◀──────────────── Listener (SCM_RIGHTS) ──
//!   ── ListenerHeld ─────────────────────────▶
//!                                               policy filter, execve
//!   ◀──────────── EOF (close-on-exec) or error text, then EOF ──
//! ```
//!
//! A child that reads anything unexpected (or EOF: the supervisor died)
//! exits 255 at once: the supervisor reports the failure. Error text never
//! starts with the two control bytes (`PARKED`, `LISTENER`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;
use crate::unotify::Tracer;

/// The byte of [`FromChild::Parked`].
const PARKED: u8 = 0x06;
/// The byte sent with the listener descriptor ([`FromChild::Listener`]).
const LISTENER: u8 = 0x0e;
/// The byte sent with the jail's TUN device (user_net NSTUN).
const TUN: u8 = 0x0f;

/// Supervisor → child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToChild {
    /// The supervisor's part is done (interfaces, cgroup, id maps): set
    /// yourself up.
    Proceed,
    /// A parked child may exec, untraced.
    Release,
    /// A parked child may exec, traced (`seccomp_unotify`).
    ReleaseTraced,
    /// The supervisor holds the tracing listener: go on.
    ListenerHeld,
}

impl ToChild {
    fn byte(self) -> u8 {
        match self {
            ToChild::Proceed => b'D',
            ToChild::Release => b'G',
            ToChild::ReleaseTraced => b'T',
            ToChild::ListenerHeld => b'A',
        }
    }

    fn from_byte(b: u8) -> Option<ToChild> {
        [
            ToChild::Proceed,
            ToChild::Release,
            ToChild::ReleaseTraced,
            ToChild::ListenerHeld,
        ]
        .into_iter()
        .find(|m| m.byte() == b)
    }
}

/// Child → supervisor.
#[derive(Debug)]
pub enum FromChild {
    /// Set up (RERUN pre-launch), waiting for a release.
    Parked,
    /// The `seccomp_unotify` listener.
    Listener(OwnedFd),
    /// The jail's TUN device (user_net NSTUN), before anything else.
    Tun(OwnedFd),
    /// The child failed before exec: its words.
    Failed(String),
    /// The socket closed without a word: the exec happened (the child's end
    /// is close-on-exec).
    Exec,
}

/// A fresh socketpair: (supervisor's end, child's end), both close-on-exec.
pub fn pair() -> Result<(SupervisorEnd, ChildEnd), sys::SysError> {
    let (a, b) = sys::socketpair()?;
    Ok((SupervisorEnd(a), ChildEnd(b)))
}

/// The supervisor's end.
#[derive(Debug)]
pub struct SupervisorEnd(OwnedFd);

impl SupervisorEnd {
    /// Send one message.
    pub fn send(&self, m: ToChild) -> io::Result<()> {
        sys::write_all(self.0.as_fd(), &[m.byte()])
    }

    /// Wait for the child's next message, answering the traced jail's
    /// notifications meanwhile (with `tracer`). Error text is read to EOF.
    pub fn recv(&self, mut tracer: Option<&mut Tracer>) -> io::Result<FromChild> {
        let fd = self.0.as_fd();
        let mut chunk = [0u8; 512];
        loop {
            let ready = match tracer.as_deref_mut() {
                Some(t) => t.poll_in(fd, -1),
                None => sys::poll_in(fd, -1),
            };
            if ready.map_err(|e| e.source)? {
                break;
            }
        }
        let (n, passed) = sys::recv_with_fd(fd, &mut chunk)?;
        if let Some(passed) = passed {
            return Ok(if chunk[..n] == [TUN] {
                FromChild::Tun(passed)
            } else {
                FromChild::Listener(passed)
            });
        }
        match &chunk[..n] {
            [] => Ok(FromChild::Exec),
            [PARKED] => Ok(FromChild::Parked),
            text => {
                let mut out = text.to_vec();
                loop {
                    let (n, _) = sys::recv_with_fd(fd, &mut chunk)?;
                    if n == 0 {
                        return Ok(FromChild::Failed(
                            String::from_utf8_lossy(&out).into_owned(),
                        ));
                    }
                    out.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// The jail's TUN device, its first message when user_net is NSTUN.
    pub fn recv_tun(&self) -> Result<OwnedFd, String> {
        match self.recv(None) {
            Ok(FromChild::Tun(fd)) => Ok(fd),
            Ok(FromChild::Failed(why)) => Err(why),
            Ok(_) => Err("the child did not send its TUN device".to_string()),
            Err(e) => Err(format!("reading the child's TUN device: {e}")),
        }
    }

    /// The first message of a parked child: `Ok(())` for [`FromChild::Parked`],
    /// else why it is not parked.
    pub fn read_parked(&self) -> Result<(), String> {
        match self.recv(None) {
            Ok(FromChild::Parked) => Ok(()),
            Ok(FromChild::Failed(why)) => Err(why),
            Ok(FromChild::Exec) => Err("the child ended before it was set up".to_string()),
            Ok(FromChild::Listener(_)) => {
                Err("the child sent a listener before it was released".to_string())
            }
            Ok(FromChild::Tun(_)) => Err("the child sent a TUN device out of turn".to_string()),
            Err(e) => Err(format!("reading the child's status: {e}")),
        }
    }

    /// Read until the exec (`None`) or the child's error text (`Some`). A
    /// listener that arrives on the way goes to `tracer` (attached to
    /// `pid`) and the child is told [`ToChild::ListenerHeld`].
    pub fn read_status(&self, mut tracer: Option<&mut Tracer>, pid: i32) -> Option<String> {
        loop {
            match self.recv(tracer.as_deref_mut()) {
                Ok(FromChild::Exec) => return None,
                Ok(FromChild::Failed(why)) => return Some(why),
                Ok(FromChild::Parked) => {
                    return Some("the child parked without being asked to".to_string())
                }
                Ok(FromChild::Tun(_)) => {
                    return Some("the child sent a TUN device out of turn".to_string())
                }
                Ok(FromChild::Listener(l)) => {
                    match tracer.as_deref_mut() {
                        Some(t) => t.attach(pid, l),
                        None => log::warn!(
                            "pid={pid} sent a seccomp_unotify listener it was not asked for; ignored"
                        ),
                    }
                    if let Err(e) = self.send(ToChild::ListenerHeld) {
                        return Some(format!("answering the child (pid={pid}): {e}"));
                    }
                }
                Err(e) => return Some(format!("reading the child's status: {e}")),
            }
        }
    }
}

/// The child's end.
#[derive(Debug)]
pub struct ChildEnd(OwnedFd);

impl ChildEnd {
    /// Wait for the next message; `None` when the supervisor is gone or
    /// sent something else than a message.
    pub fn recv(&self) -> Option<ToChild> {
        let mut b = [0u8; 1];
        match sys::read(self.0.as_fd(), &mut b) {
            Ok(1) => ToChild::from_byte(b[0]),
            _ => None,
        }
    }

    /// Tell a RERUN supervisor that the jail is set up and waits.
    pub fn parked(&self) -> io::Result<()> {
        sys::write_all(self.0.as_fd(), &[PARKED])
    }

    /// Hand the tracing listener over and wait until the supervisor holds
    /// it. Between the tracing filter's install and this, only untraced
    /// calls happen (sendmsg, read).
    pub fn send_listener(&self, listener: BorrowedFd<'_>) -> Result<(), String> {
        sys::send_fd(self.0.as_fd(), LISTENER, listener.as_fd())
            .map_err(|e| format!("sending the seccomp_unotify listener to nsjail failed: {e}"))?;
        match self.recv() {
            Some(ToChild::ListenerHeld) => Ok(()),
            _ => sys::exit_now(255), // the supervisor is gone or failed; it reports
        }
    }

    /// Hand the jail's TUN device to the supervisor (user_net NSTUN).
    pub fn send_tun(&self, tun: BorrowedFd<'_>) -> Result<(), String> {
        sys::send_fd(self.0.as_fd(), TUN, tun)
            .map_err(|e| format!("sending the TUN device to nsjail failed: {e}"))
    }

    /// Report a failure (the supervisor shows the text; the caller exits).
    pub fn fail(&self, why: &str) {
        let _ = sys::write_all(self.0.as_fd(), why.as_bytes());
    }

    /// Whether the supervisor's end is closed (it died).
    pub fn supervisor_gone(&self) -> bool {
        sys::peer_closed(self.0.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_never_look_like_text_markers() {
        for m in [
            ToChild::Proceed,
            ToChild::Release,
            ToChild::ReleaseTraced,
            ToChild::ListenerHeld,
        ] {
            assert_eq!(ToChild::from_byte(m.byte()), Some(m));
        }
        assert_eq!(ToChild::from_byte(b'x'), None);
        // the child's control bytes are not printable text
        assert!(
            !PARKED.is_ascii_graphic() && !LISTENER.is_ascii_graphic() && !TUN.is_ascii_graphic()
        );
    }

    #[test]
    fn a_failure_text_reaches_the_supervisor() {
        let (sup, child) = pair().unwrap();
        child.fail("mount failed: because");
        drop(child);
        assert_eq!(
            sup.read_status(None, 0).as_deref(),
            Some("mount failed: because")
        );
    }

    #[test]
    fn eof_means_exec_and_parked_is_seen() {
        let (sup, child) = pair().unwrap();
        child.parked().unwrap();
        assert_eq!(sup.read_parked(), Ok(()));
        sup.send(ToChild::Release).unwrap();
        assert_eq!(child.recv(), Some(ToChild::Release));
        drop(child);
        assert_eq!(sup.read_status(None, 0), None);
        let (sup, child) = pair().unwrap();
        drop(child);
        assert!(sup.read_parked().is_err());
        let (sup, child) = pair().unwrap();
        drop(sup);
        assert!(child.supervisor_gone());
        assert_eq!(child.recv(), None);
    }
}
