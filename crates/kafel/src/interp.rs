//! A classic-BPF interpreter for seccomp filters (test support, public so other
//! crates' tests can decide syscalls without installing anything).
//!
//! It accepts the instruction subset the kernel's seccomp filter checker accepts
//! (loads from `seccomp_data`, scratch memory, ALU, jumps, returns) and fails on
//! anything the kernel would reject at run time or load time.

use crate::bpf::*;
use crate::SockFilter;

/// The input of a seccomp filter (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    /// Syscall number.
    pub nr: i32,
    /// `AUDIT_ARCH_*` value.
    pub arch: u32,
    /// Instruction pointer at the time of the syscall.
    pub instruction_pointer: u64,
    /// Syscall arguments.
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte `offset` of the kernel's little-endian layout.
    pub fn word(&self, offset: u32) -> Option<u32> {
        if !offset.is_multiple_of(4) || offset >= SECCOMP_DATA_SIZE {
            return None;
        }
        let lo_hi = |v: u64, at: u32| {
            if at.is_multiple_of(8) {
                v as u32
            } else {
                (v >> 32) as u32
            }
        };
        Some(match offset {
            SECCOMP_DATA_NR => self.nr as u32,
            SECCOMP_DATA_ARCH => self.arch,
            8 | 12 => lo_hi(self.instruction_pointer, offset - 8),
            _ => {
                let rel = offset - SECCOMP_DATA_ARGS;
                lo_hi(self.args[(rel / 8) as usize], rel)
            }
        })
    }
}

/// Why a program could not be run to a verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// The program has no instructions or more than `BPF_MAXINSNS`.
    #[error("program length {0} is outside 1..=4096 instructions")]
    BadLength(usize),
    /// A jump leaves the program.
    #[error("instruction {pc}: jump target is past the end of the program")]
    JumpOutOfRange {
        /// Index of the jump.
        pc: usize,
    },
    /// Execution ran past the last instruction without returning.
    #[error("execution fell off the end of the program")]
    FellOffEnd,
    /// A load outside `seccomp_data` or not 4-byte aligned.
    #[error("instruction {pc}: load of seccomp_data offset {offset} is out of range or unaligned")]
    BadLoad {
        /// Index of the load.
        pc: usize,
        /// Offset loaded.
        offset: u32,
    },
    /// Access to a scratch word that does not exist or was never written.
    #[error("instruction {pc}: scratch memory word {slot} is out of range or uninitialized")]
    BadMemory {
        /// Index of the instruction.
        pc: usize,
        /// Word index.
        slot: u32,
    },
    /// Division or modulo by zero.
    #[error("instruction {pc}: division by zero")]
    DivisionByZero {
        /// Index of the instruction.
        pc: usize,
    },
    /// An opcode seccomp does not allow.
    #[error("instruction {pc}: opcode {code:#06x} is not allowed in seccomp filters")]
    BadOpcode {
        /// Index of the instruction.
        pc: usize,
        /// The opcode.
        code: u16,
    },
}

/// A verdict and how many instructions ran to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The `SECCOMP_RET_*` value returned.
    pub ret: u32,
    /// Instructions executed, the returning one included.
    pub executed: usize,
    /// Instructions executed before the first load of a syscall argument (the
    /// dispatch cost), or `None` when no argument was loaded.
    pub before_args: Option<usize>,
}

/// Runs `prog` on `data` and returns the filter's `SECCOMP_RET_*` value.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> Result<u32, InterpError> {
    run_counted(prog, data).map(|o| o.ret)
}

/// Like [`run`], also counting executed instructions.
pub fn run_counted(prog: &[SockFilter], data: &SeccompData) -> Result<Outcome, InterpError> {
    if prog.is_empty() || prog.len() > BPF_MAXINSNS {
        return Err(InterpError::BadLength(prog.len()));
    }
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem: [Option<u32>; BPF_MEMWORDS] = [None; BPF_MEMWORDS];
    let mut pc = 0usize;
    let mut executed = 0usize;
    let mut before_args = None;
    loop {
        let Some(ins) = prog.get(pc) else {
            return Err(InterpError::FellOffEnd);
        };
        executed += 1;
        let class = ins.code & 0x07;
        let bad = InterpError::BadOpcode { pc, code: ins.code };
        let mut next = pc + 1;
        match class {
            BPF_LD | BPF_LDX => {
                let mode = ins.code & 0xe0;
                let size = ins.code & 0x18;
                if mode == BPF_ABS && ins.k >= SECCOMP_DATA_ARGS && before_args.is_none() {
                    before_args = Some(executed - 1);
                }
                let value = match (mode, size) {
                    (BPF_ABS, BPF_W) if class == BPF_LD => data
                        .word(ins.k)
                        .ok_or(InterpError::BadLoad { pc, offset: ins.k })?,
                    (BPF_IMM, BPF_W) => ins.k,
                    (BPF_LEN, BPF_W) => SECCOMP_DATA_SIZE,
                    (BPF_MEM, BPF_W) => mem
                        .get(ins.k as usize)
                        .copied()
                        .flatten()
                        .ok_or(InterpError::BadMemory { pc, slot: ins.k })?,
                    _ => return Err(bad),
                };
                if class == BPF_LD {
                    a = value;
                } else {
                    x = value;
                }
            }
            BPF_ST | BPF_STX => {
                if ins.code != class {
                    return Err(bad);
                }
                let slot = mem
                    .get_mut(ins.k as usize)
                    .ok_or(InterpError::BadMemory { pc, slot: ins.k })?;
                *slot = Some(if class == BPF_ST { a } else { x });
            }
            BPF_ALU => {
                let src = if ins.code & BPF_X != 0 { x } else { ins.k };
                a = match ins.code & 0xf0 {
                    BPF_ADD => a.wrapping_add(src),
                    BPF_SUB => a.wrapping_sub(src),
                    BPF_MUL => a.wrapping_mul(src),
                    BPF_DIV => a
                        .checked_div(src)
                        .ok_or(InterpError::DivisionByZero { pc })?,
                    BPF_MOD => a
                        .checked_rem(src)
                        .ok_or(InterpError::DivisionByZero { pc })?,
                    BPF_OR => a | src,
                    BPF_AND => a & src,
                    BPF_XOR => a ^ src,
                    BPF_LSH => a.checked_shl(src).unwrap_or(0),
                    BPF_RSH => a.checked_shr(src).unwrap_or(0),
                    BPF_NEG => a.wrapping_neg(),
                    _ => return Err(bad),
                };
            }
            BPF_JMP => {
                let op = ins.code & 0xf0;
                if op == BPF_JA {
                    next = pc
                        .checked_add(1 + ins.k as usize)
                        .filter(|&n| n < prog.len())
                        .ok_or(InterpError::JumpOutOfRange { pc })?;
                } else {
                    let src = if ins.code & BPF_X != 0 { x } else { ins.k };
                    let taken = match op {
                        BPF_JEQ => a == src,
                        BPF_JGT => a > src,
                        BPF_JGE => a >= src,
                        BPF_JSET => a & src != 0,
                        _ => return Err(bad),
                    };
                    let off = if taken { ins.jt } else { ins.jf };
                    next = pc + 1 + usize::from(off);
                    if next >= prog.len() {
                        return Err(InterpError::JumpOutOfRange { pc });
                    }
                }
            }
            BPF_RET => {
                let ret = match ins.code & 0x18 {
                    BPF_K => ins.k,
                    BPF_A => a,
                    _ => return Err(bad),
                };
                return Ok(Outcome {
                    ret,
                    executed,
                    before_args,
                });
            }
            _ => {
                // BPF_MISC
                match ins.code {
                    c if c == BPF_MISC | BPF_TAX => x = a,
                    c if c == BPF_MISC | BPF_TXA => a = x,
                    _ => return Err(bad),
                }
            }
        }
        pc = next;
    }
}
