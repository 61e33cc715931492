//! The nsjail runtime: one module per concern.

pub mod cgroup;
