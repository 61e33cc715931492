//! The cgroup request of a jail: what the cgroup fields of a config ask for, and the exact directories and
//! control-file writes that implement it in v1 and in v2. Pure: no I/O.

use std::path::{Path, PathBuf};

/// The cgroup part of an `NsJailConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupRequest {
    /// `cgroup_mem_max` (bytes, 0 = off).
    pub mem_max: u64,
    /// `cgroup_mem_memsw_max` (bytes, 0 = off).
    pub memsw_max: u64,
    /// `cgroup_mem_swap_max` (bytes, -1 = off).
    pub swap_max: i64,
    /// `cgroup_pids_max` (0 = off).
    pub pids_max: u64,
    /// `cgroup_net_cls_classid` (0 = off).
    pub net_cls_classid: u32,
    /// `cgroup_cpu_ms_per_sec` (0 = off).
    pub cpu_ms_per_sec: u32,
    /// v1 `(mount, parent)` per controller.
    pub mem: (PathBuf, PathBuf),
    pub pids: (PathBuf, PathBuf),
    pub net_cls: (PathBuf, PathBuf),
    pub cpu: (PathBuf, PathBuf),
    /// `cgroupv2_mount`.
    pub v2_mount: PathBuf,
    /// `use_cgroupv2`.
    pub use_v2: bool,
    /// `detect_cgroupv2`.
    pub detect_v2: bool,
}

impl Default for CgroupRequest {
    /// nsjail's defaults (no limit requested).
    fn default() -> CgroupRequest {
        let p = |m: &str| (PathBuf::from(m), PathBuf::from("NSJAIL"));
        CgroupRequest {
            mem_max: 0,
            memsw_max: 0,
            swap_max: -1,
            pids_max: 0,
            net_cls_classid: 0,
            cpu_ms_per_sec: 0,
            mem: p("/sys/fs/cgroup/memory"),
            pids: p("/sys/fs/cgroup/pids"),
            net_cls: p("/sys/fs/cgroup/net_cls"),
            cpu: p("/sys/fs/cgroup/cpu"),
            v2_mount: PathBuf::from("/sys/fs/cgroup"),
            use_v2: false,
            detect_v2: false,
        }
    }
}

impl CgroupRequest {
    /// Extracts the cgroup fields of a config.
    pub fn from_config(cfg: &crate::proto::config::NsJailConfig) -> CgroupRequest {
        let pair = |m: &str, p: &str| (PathBuf::from(m), PathBuf::from(p));
        CgroupRequest {
            mem_max: cfg.cgroup_mem_max(),
            memsw_max: cfg.cgroup_mem_memsw_max(),
            swap_max: cfg.cgroup_mem_swap_max(),
            pids_max: cfg.cgroup_pids_max(),
            net_cls_classid: cfg.cgroup_net_cls_classid(),
            cpu_ms_per_sec: cfg.cgroup_cpu_ms_per_sec(),
            mem: pair(cfg.cgroup_mem_mount(), cfg.cgroup_mem_parent()),
            pids: pair(cfg.cgroup_pids_mount(), cfg.cgroup_pids_parent()),
            net_cls: pair(cfg.cgroup_net_cls_mount(), cfg.cgroup_net_cls_parent()),
            cpu: pair(cfg.cgroup_cpu_mount(), cfg.cgroup_cpu_parent()),
            v2_mount: PathBuf::from(cfg.cgroupv2_mount()),
            use_v2: cfg.use_cgroupv2(),
            detect_v2: cfg.detect_cgroupv2(),
        }
    }

    /// v1 memsw limit: `swap_max + mem_max` when a swap limit is given, else `memsw_max`.
    pub fn v1_memsw(&self) -> u64 {
        if self.swap_max >= 0 {
            (self.swap_max as u64).saturating_add(self.mem_max)
        } else {
            self.memsw_max
        }
    }

    /// v2 `memory.swap.max`: `memsw_max - mem_max` when memsw is given, else
    /// `swap_max`; `None` when that is negative (= no swap limit).
    pub fn v2_swap(&self) -> Option<u64> {
        let s: i128 = if self.memsw_max > 0 {
            self.memsw_max as i128 - self.mem_max as i128
        } else {
            self.swap_max as i128
        };
        (s >= 0).then_some(s as u64)
    }

    fn v1_memory(&self) -> bool {
        self.mem_max > 0 || self.v1_memsw() > 0
    }

    fn v2_memory(&self) -> bool {
        self.mem_max > 0 || self.v2_swap().is_some()
    }

    /// Any limit at all (the jail then gets cgroups).
    pub fn is_active(&self) -> bool {
        self.v1_memory()
            || self.v2_memory()
            || self.pids_max > 0
            || self.net_cls_classid > 0
            || self.cpu_ms_per_sec > 0
    }

    /// The requested limits, as `field=value` text for messages.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.mem_max > 0 {
            v.push(format!("cgroup_mem_max={}", self.mem_max));
        }
        if self.memsw_max > 0 {
            v.push(format!("cgroup_mem_memsw_max={}", self.memsw_max));
        }
        if self.swap_max >= 0 {
            v.push(format!("cgroup_mem_swap_max={}", self.swap_max));
        }
        if self.pids_max > 0 {
            v.push(format!("cgroup_pids_max={}", self.pids_max));
        }
        if self.net_cls_classid > 0 {
            v.push(format!("cgroup_net_cls_classid={}", self.net_cls_classid));
        }
        if self.cpu_ms_per_sec > 0 {
            v.push(format!("cgroup_cpu_ms_per_sec={}", self.cpu_ms_per_sec));
        }
        v.join(", ")
    }

    /// The v1 controllers and what to write in each (`tasks` comes last, separately).
    pub fn v1_plan(&self) -> Vec<V1Plan> {
        let mut out = Vec::new();
        if self.v1_memory() {
            let mut writes = vec![("memory.oom_control", "0".to_string())];
            let mut limit = Vec::new();
            if self.mem_max > 0 {
                writes.push(("memory.limit_in_bytes", self.mem_max.to_string()));
                limit.push(format!("cgroup_mem_max={}", self.mem_max));
            }
            let memsw = self.v1_memsw();
            if memsw > 0 {
                writes.push(("memory.memsw.limit_in_bytes", memsw.to_string()));
                if self.swap_max >= 0 {
                    limit.push(format!("cgroup_mem_swap_max={}", self.swap_max));
                } else {
                    limit.push(format!("cgroup_mem_memsw_max={}", self.memsw_max));
                }
            }
            out.push(V1Plan::new(
                V1Controller::Memory,
                &self.mem,
                writes,
                limit.join(", "),
            ));
        }
        if self.pids_max > 0 {
            let writes = vec![("pids.max", self.pids_max.to_string())];
            let limit = format!("cgroup_pids_max={}", self.pids_max);
            out.push(V1Plan::new(V1Controller::Pids, &self.pids, writes, limit));
        }
        if self.net_cls_classid > 0 {
            let writes = vec![("net_cls.classid", format!("0x{:x}", self.net_cls_classid))];
            let limit = format!("cgroup_net_cls_classid={}", self.net_cls_classid);
            out.push(V1Plan::new(
                V1Controller::NetCls,
                &self.net_cls,
                writes,
                limit,
            ));
        }
        if self.cpu_ms_per_sec > 0 {
            let writes = vec![
                ("cpu.cfs_period_us", "1000000".to_string()),
                (
                    "cpu.cfs_quota_us",
                    (self.cpu_ms_per_sec as u64 * 1000).to_string(),
                ),
            ];
            let limit = format!("cgroup_cpu_ms_per_sec={}", self.cpu_ms_per_sec);
            out.push(V1Plan::new(V1Controller::Cpu, &self.cpu, writes, limit));
        }
        out
    }

    /// The v2 controllers needed, the writes into `NSJAIL.<pid>`, and the
    /// requested limits v2 cannot express (net_cls).
    pub fn v2_plan(&self) -> V2Plan {
        let mut p = V2Plan::default();
        if self.v2_memory() {
            p.controllers.push("memory");
            if self.mem_max > 0 {
                p.writes.push(("memory.max", self.mem_max.to_string()));
            }
            if let Some(s) = self.v2_swap() {
                p.writes.push(("memory.swap.max", s.to_string()));
            }
        }
        if self.pids_max > 0 {
            p.controllers.push("pids");
            p.writes.push(("pids.max", self.pids_max.to_string()));
        }
        if self.cpu_ms_per_sec > 0 {
            p.controllers.push("cpu");
            let quota = self.cpu_ms_per_sec as u64 * 1000;
            p.writes.push(("cpu.max", format!("{quota} 1000000")));
        }
        if self.net_cls_classid > 0 {
            p.unsupported
                .push(format!("cgroup_net_cls_classid={}", self.net_cls_classid));
        }
        p
    }
}

/// A v1 controller nsjail drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Controller {
    Memory,
    Pids,
    NetCls,
    Cpu,
}

impl V1Controller {
    /// The controller's name in mount options and `/proc/self/cgroup`.
    pub fn name(self) -> &'static str {
        match self {
            V1Controller::Memory => "memory",
            V1Controller::Pids => "pids",
            V1Controller::NetCls => "net_cls",
            V1Controller::Cpu => "cpu",
        }
    }
}

/// One v1 controller's part of a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Plan {
    pub controller: V1Controller,
    /// The hierarchy mount (`cgroup_*_mount`).
    pub mount: PathBuf,
    /// The parent relative to the mount (`cgroup_*_parent`).
    pub parent: PathBuf,
    /// Control files written in `NSJAIL.<pid>`, in order.
    pub writes: Vec<(&'static str, String)>,
    /// The config fields this controller implements (for messages).
    pub limit: String,
}

impl V1Plan {
    fn new(
        controller: V1Controller,
        (mount, parent): &(PathBuf, PathBuf),
        writes: Vec<(&'static str, String)>,
        limit: String,
    ) -> V1Plan {
        V1Plan {
            controller,
            mount: mount.clone(),
            parent: parent.clone(),
            writes,
            limit,
        }
    }

    /// `<mount>/<parent>`.
    pub fn parent_dir(&self) -> PathBuf {
        join_rel(&self.mount, &self.parent)
    }

    /// `<mount>/<parent>/NSJAIL.<pid>`.
    pub fn jail_dir(&self, pid: i32) -> PathBuf {
        self.parent_dir().join(jail_name(pid))
    }

    /// The directories between the mount (exclusive) and the parent
    /// (inclusive), shallowest first: the ones we may have to create.
    pub fn parent_chain(&self) -> Vec<PathBuf> {
        let mut cur = self.mount.clone();
        let mut out = Vec::new();
        for c in self.parent.components() {
            if let std::path::Component::Normal(n) = c {
                cur.push(n);
                out.push(cur.clone());
            }
        }
        out
    }
}

/// The v2 part of a jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Plan {
    /// Controllers that must be enabled in the parent's `cgroup.subtree_control`.
    pub controllers: Vec<&'static str>,
    /// Control files written in `NSJAIL.<pid>`, in order.
    pub writes: Vec<(&'static str, String)>,
    /// Requested limits with no v2 equivalent.
    pub unsupported: Vec<String>,
}

/// `NSJAIL.<pid>`.
pub fn jail_name(pid: i32) -> String {
    format!("NSJAIL.{pid}")
}

/// `base/rel` where `rel` is taken as relative even if it starts with `/`
/// and `..`/`.` components are dropped (a parent can never escape the mount).
pub fn join_rel(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in rel.components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> CgroupRequest {
        CgroupRequest {
            mem_max: 134217728,
            swap_max: 0,
            pids_max: 1,
            cpu_ms_per_sec: 1000,
            ..CgroupRequest::default()
        }
    }

    #[test]
    fn defaults_are_inactive() {
        let r = CgroupRequest::default();
        assert!(!r.is_active());
        assert!(r.v1_plan().is_empty());
        assert_eq!(r.v2_plan(), V2Plan::default());
        let cfg = crate::proto::config::NsJailConfig::new();
        assert_eq!(CgroupRequest::from_config(&cfg), r);
    }

    #[test]
    fn from_config_reads_every_field() {
        let mut cfg = crate::proto::config::NsJailConfig::new();
        cfg.set_cgroup_mem_max(1);
        cfg.set_cgroup_mem_memsw_max(2);
        cfg.set_cgroup_mem_swap_max(3);
        cfg.set_cgroup_pids_max(4);
        cfg.set_cgroup_net_cls_classid(5);
        cfg.set_cgroup_cpu_ms_per_sec(6);
        cfg.set_cgroup_mem_parent("a/b".into());
        cfg.set_cgroup_cpu_mount("/c".into());
        cfg.set_cgroupv2_mount("/v2".into());
        cfg.set_use_cgroupv2(true);
        cfg.set_detect_cgroupv2(true);
        let r = CgroupRequest::from_config(&cfg);
        assert_eq!(
            (
                r.mem_max,
                r.memsw_max,
                r.swap_max,
                r.pids_max,
                r.net_cls_classid,
                r.cpu_ms_per_sec
            ),
            (1, 2, 3, 4, 5, 6)
        );
        assert_eq!(r.mem.1, PathBuf::from("a/b"));
        assert_eq!(r.cpu.0, PathBuf::from("/c"));
        assert_eq!(r.v2_mount, PathBuf::from("/v2"));
        assert!(r.use_v2 && r.detect_v2);
    }

    #[test]
    fn v1_plan_for_the_seed_config() {
        let plan = seed().v1_plan();
        let names: Vec<_> = plan.iter().map(|p| p.controller).collect();
        assert_eq!(
            names,
            [V1Controller::Memory, V1Controller::Pids, V1Controller::Cpu]
        );
        assert_eq!(
            plan[0].writes,
            [
                ("memory.oom_control", "0".to_string()),
                ("memory.limit_in_bytes", "134217728".to_string()),
                ("memory.memsw.limit_in_bytes", "134217728".to_string()),
            ]
        );
        assert_eq!(plan[1].writes, [("pids.max", "1".to_string())]);
        assert_eq!(
            plan[2].writes,
            [
                ("cpu.cfs_period_us", "1000000".to_string()),
                ("cpu.cfs_quota_us", "1000000".to_string()),
            ]
        );
        assert_eq!(
            plan[0].jail_dir(42),
            PathBuf::from("/sys/fs/cgroup/memory/NSJAIL/NSJAIL.42")
        );
    }

    #[test]
    fn v1_memsw_rules() {
        let mut r = CgroupRequest {
            mem_max: 100,
            memsw_max: 500,
            ..CgroupRequest::default()
        };
        assert_eq!(r.v1_memsw(), 500);
        r.swap_max = 50; // swap given: overrides memsw
        assert_eq!(r.v1_memsw(), 150);
        r.swap_max = -1;
        r.memsw_max = 0;
        assert_eq!(r.v1_memsw(), 0);
        let plan = r.v1_plan();
        assert_eq!(plan[0].writes.len(), 2, "no memsw write without memsw/swap");
    }

    #[test]
    fn v1_net_cls_is_hex() {
        let r = CgroupRequest {
            net_cls_classid: 0x100001,
            ..CgroupRequest::default()
        };
        let plan = r.v1_plan();
        assert_eq!(plan.len(), 1);
        assert_eq!(
            plan[0].writes,
            [("net_cls.classid", "0x100001".to_string())]
        );
        assert!(r.v2_plan().unsupported[0].contains("cgroup_net_cls_classid"));
    }

    #[test]
    fn v2_plan_for_the_seed_config() {
        let p = seed().v2_plan();
        assert_eq!(p.controllers, ["memory", "pids", "cpu"]);
        assert_eq!(
            p.writes,
            [
                ("memory.max", "134217728".to_string()),
                ("memory.swap.max", "0".to_string()),
                ("pids.max", "1".to_string()),
                ("cpu.max", "1000000 1000000".to_string()),
            ]
        );
        assert!(p.unsupported.is_empty());
    }

    #[test]
    fn v2_swap_rules() {
        let mut r = CgroupRequest {
            mem_max: 100,
            memsw_max: 300,
            swap_max: 7,
            ..CgroupRequest::default()
        };
        assert_eq!(r.v2_swap(), Some(200), "memsw wins in v2");
        r.memsw_max = 50;
        assert_eq!(r.v2_swap(), None, "memsw below mem: no swap limit");
        r.memsw_max = 0;
        assert_eq!(r.v2_swap(), Some(7));
        r.swap_max = -1;
        assert_eq!(r.v2_swap(), None);
        // swap alone still needs the memory controller
        let only_swap = CgroupRequest {
            swap_max: 0,
            ..CgroupRequest::default()
        };
        assert_eq!(only_swap.v2_plan().controllers, ["memory"]);
        assert!(only_swap.is_active());
    }

    #[test]
    fn parent_chain_and_escape_proof_join() {
        let r = CgroupRequest {
            pids_max: 3,
            pids: ("/m".into(), "/a/../b/c".into()),
            ..CgroupRequest::default()
        };
        let p = &r.v1_plan()[0];
        assert_eq!(p.parent_dir(), PathBuf::from("/m/a/b/c"));
        assert_eq!(
            p.parent_chain(),
            [PathBuf::from("/m/a"), "/m/a/b".into(), "/m/a/b/c".into()]
        );
        let r2 = CgroupRequest {
            pids_max: 3,
            pids: ("/m".into(), "".into()),
            ..CgroupRequest::default()
        };
        assert!(r2.v1_plan()[0].parent_chain().is_empty());
        assert_eq!(r2.v1_plan()[0].jail_dir(7), PathBuf::from("/m/NSJAIL.7"));
    }
}
