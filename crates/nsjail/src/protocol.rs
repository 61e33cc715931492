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
/// The byte in front of [`FromChild::Timings`].
const TIMINGS: u8 = 0x07;
/// How many phases the child times ([`ChildTimings`]).
const N_TIMINGS: usize = 6;

/// The child's own phases before its exec, in microseconds: waiting for the
/// supervisor, the uid switch, the mounts, the network, the process
/// settings, the announcement (ours).
pub type ChildTimings = [u64; N_TIMINGS];
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
    /// The child's phase times, sent right before its seccomp filters and
    /// exec.
    Timings(ChildTimings),
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
    Ok((
        SupervisorEnd {
            fd: a,
            pending: std::cell::RefCell::new(Vec::new()),
        },
        ChildEnd(b),
    ))
}

/// The supervisor's end.
#[derive(Debug)]
pub struct SupervisorEnd {
    fd: OwnedFd,
    /// Bytes read with a message that belong to the next one.
    pending: std::cell::RefCell<Vec<u8>>,
}

/// What the launch learned from the child: its error (None: it exec'd)
/// and its phase times, when it sent them.
#[derive(Debug, Default)]
pub struct Status {
    /// The child's words when it failed before its exec.
    pub error: Option<String>,
    /// Its phase times.
    pub timings: Option<ChildTimings>,
    /// When the timings arrived (the rest until the exec is seccomp+exec).
    pub timings_at: Option<std::time::Instant>,
}

impl SupervisorEnd {
    /// Send one message.
    pub fn send(&self, m: ToChild) -> io::Result<()> {
        sys::write_all(self.fd.as_fd(), &[m.byte()])
    }

    /// Failure text from `first` to EOF.
    fn text_to_eof(&self, first: Vec<u8>) -> io::Result<FromChild> {
        let mut out = first;
        let mut chunk = [0u8; 512];
        loop {
            let (n, _) = sys::recv_with_fd(self.fd.as_fd(), &mut chunk)?;
            if n == 0 {
                return Ok(FromChild::Failed(
                    String::from_utf8_lossy(&out).into_owned(),
                ));
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait for the child's next message, answering the traced jail's
    /// notifications meanwhile (with `tracer`). Error text is read to EOF.
    pub fn recv(&self, mut tracer: Option<&mut Tracer>) -> io::Result<FromChild> {
        let pending = self.pending.take();
        if !pending.is_empty() {
            return self.text_to_eof(pending);
        }
        let fd = self.fd.as_fd();
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
            [TIMINGS, rest @ ..] if rest.len() >= 8 * N_TIMINGS => {
                let mut t = [0u64; N_TIMINGS];
                for (i, v) in t.iter_mut().enumerate() {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&rest[8 * i..8 * i + 8]);
                    *v = u64::from_le_bytes(b);
                }
                // A failure right after (its seccomp filter) may share the read.
                self.pending.replace(rest[8 * N_TIMINGS..].to_vec());
                Ok(FromChild::Timings(t))
            }
            text => self.text_to_eof(text.to_vec()),
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
            Ok(FromChild::Listener(_) | FromChild::Timings(_)) => {
                Err("the child went on before it was released".to_string())
            }
            Ok(FromChild::Tun(_)) => Err("the child sent a TUN device out of turn".to_string()),
            Err(e) => Err(format!("reading the child's status: {e}")),
        }
    }

    /// Read until the exec or the child's error text (and its timings on
    /// the way). A
    /// listener that arrives on the way goes to `tracer` (attached to
    /// `pid`) and the child is told [`ToChild::ListenerHeld`].
    pub fn read_status(&self, mut tracer: Option<&mut Tracer>, pid: i32) -> Status {
        let mut st = Status::default();
        let fail = |st: Status, why: String| Status {
            error: Some(why),
            ..st
        };
        loop {
            match self.recv(tracer.as_deref_mut()) {
                Ok(FromChild::Exec) => return st,
                Ok(FromChild::Failed(why)) => return fail(st, why),
                Ok(FromChild::Parked) => {
                    return fail(st, "the child parked without being asked to".to_string())
                }
                Ok(FromChild::Timings(t)) => {
                    st.timings = Some(t);
                    st.timings_at = Some(std::time::Instant::now());
                }
                Ok(FromChild::Tun(_)) => {
                    return fail(st, "the child sent a TUN device out of turn".to_string())
                }
                Ok(FromChild::Listener(l)) => {
                    match tracer.as_deref_mut() {
                        Some(t) => t.attach(pid, l),
                        None => log::warn!(
                            "pid={pid} sent a seccomp_unotify listener it was not asked for; ignored"
                        ),
                    }
                    if let Err(e) = self.send(ToChild::ListenerHeld) {
                        return fail(st, format!("answering the child (pid={pid}): {e}"));
                    }
                }
                Err(e) => return fail(st, format!("reading the child's status: {e}")),
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

    /// Send the child's phase times (right before its seccomp filters and
    /// exec; a failure to send costs only the breakdown).
    pub fn timings(&self, t: &ChildTimings) {
        let mut b = [0u8; 1 + 8 * N_TIMINGS];
        b[0] = TIMINGS;
        for (i, v) in t.iter().enumerate() {
            b[1 + 8 * i..9 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let _ = sys::write_all(self.0.as_fd(), &b);
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
        for b in [PARKED, LISTENER, TIMINGS, TUN] {
            assert!(!b.is_ascii_graphic(), "{b}");
        }
    }

    #[test]
    fn timings_arrive_also_when_a_failure_follows_in_the_same_read() {
        let (sup, child) = pair().unwrap();
        child.timings(&[1, 2, 3, 4, 5, u64::MAX]);
        child.fail("installing the seccomp filter: EINVAL");
        drop(child);
        let st = sup.read_status(None, 0);
        assert_eq!(st.timings, Some([1, 2, 3, 4, 5, u64::MAX]));
        assert_eq!(
            st.error.as_deref(),
            Some("installing the seccomp filter: EINVAL")
        );
        let (sup, child) = pair().unwrap();
        child.timings(&[7; N_TIMINGS]);
        drop(child);
        let st = sup.read_status(None, 0);
        assert_eq!((st.timings, st.error), (Some([7; N_TIMINGS]), None));
    }

    #[test]
    fn a_failure_text_reaches_the_supervisor() {
        let (sup, child) = pair().unwrap();
        child.fail("mount failed: because");
        drop(child);
        assert_eq!(
            sup.read_status(None, 0).error.as_deref(),
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
        assert_eq!(sup.read_status(None, 0).error, None);
        let (sup, child) = pair().unwrap();
        drop(child);
        assert!(sup.read_parked().is_err());
        let (sup, child) = pair().unwrap();
        drop(sup);
        assert!(child.supervisor_gone());
        assert_eq!(child.recv(), None);
    }
}
