//! Classic BPF opcode constants (`linux/filter.h`, `linux/bpf_common.h`) and the
//! `seccomp_data` layout.

/// Instruction classes.
pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;

/// Load sizes.
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;

/// Load modes.
pub const BPF_IMM: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IND: u16 = 0x40;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_MSH: u16 = 0xa0;

/// ALU operations.
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_MUL: u16 = 0x20;
pub const BPF_DIV: u16 = 0x30;
pub const BPF_OR: u16 = 0x40;
pub const BPF_AND: u16 = 0x50;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_NEG: u16 = 0x80;
pub const BPF_MOD: u16 = 0x90;
pub const BPF_XOR: u16 = 0xa0;

/// Jump operations.
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;

/// Operand source.
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
/// Return value source.
pub const BPF_A: u16 = 0x10;

/// `BPF_MISC` operations.
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;

/// Number of scratch memory words (`BPF_MEMWORDS`).
pub const BPF_MEMWORDS: usize = 16;
/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// Offset of `seccomp_data.nr`.
pub const SECCOMP_DATA_NR: u32 = 0;
/// Offset of `seccomp_data.arch`.
pub const SECCOMP_DATA_ARCH: u32 = 4;
/// Offset of `seccomp_data.instruction_pointer`.
pub const SECCOMP_DATA_IP: u32 = 8;
/// Offset of `seccomp_data.args[0]`.
pub const SECCOMP_DATA_ARGS: u32 = 16;
/// `sizeof(struct seccomp_data)`.
pub const SECCOMP_DATA_SIZE: u32 = 64;

/// Offset of the low (`hi == false`) or high 32-bit half of argument `i`
/// (little-endian, as on x86_64 and aarch64).
pub fn arg_offset(i: u8, hi: bool) -> u32 {
    SECCOMP_DATA_ARGS + 8 * u32::from(i) + if hi { 4 } else { 0 }
}
