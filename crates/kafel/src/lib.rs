//! Kafel policy language → seccomp BPF.
