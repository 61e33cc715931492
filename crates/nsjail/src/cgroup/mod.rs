//! cgroup v1 and v2 resource control for jails.
