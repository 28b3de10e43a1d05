//! What running boxes use: processes, CPU time and resident memory, summed over every
//! process of each box (its holder and all in its user namespace or below it: see
//! `runtime::members`), for `podman stats` in box's podman window. Boxes have no cgroup
//! of their own, so this is what /proc says of their processes now; network use is the
//! host's (boxes share its network).

use anyhow::Result;

use crate::context::Context;
use crate::runtime::{members, state};
use crate::store::Store;

/// One box's use at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub name: String,
    /// Processes in the box now (0 when it is stopped).
    pub pids: usize,
    /// CPU time of those processes, in seconds.
    pub cpu_seconds: f64,
    /// Their resident memory, in bytes.
    pub memory: u64,
    /// The host's memory, in bytes.
    pub memory_total: u64,
    /// Seconds since the box started (0 when it is stopped or not known).
    pub running_for: u64,
}

impl Usage {
    /// CPU use in percent of one CPU: over the box's life, or since `previous` (a sample
    /// `interval` seconds before).
    pub fn cpu_percent(&self, previous: Option<(&Usage, f64)>) -> f64 {
        let (cpu, time) = match previous {
            Some((before, interval)) => (self.cpu_seconds - before.cpu_seconds, interval),
            None => (self.cpu_seconds, self.running_for as f64),
        };
        if time <= 0.0 || cpu <= 0.0 {
            return 0.0;
        }
        cpu / time * 100.0
    }

    /// Memory in percent of the host's.
    pub fn memory_percent(&self) -> f64 {
        if self.memory_total == 0 {
            return 0.0;
        }
        self.memory as f64 / self.memory_total as f64 * 100.0
    }
}

/// The use of each of the boxes `names` now.
pub fn sample(ctx: &Context, names: &[String]) -> Result<Vec<Usage>> {
    let store = Store::at(&ctx.dirs.store);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let statuses = state::statuses(ctx, &store, &refs);
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as u64;
    let memory_total = memory_total();
    let now = crate::store::now();
    let mut out = Vec::with_capacity(names.len());
    for (name, status) in refs.iter().zip(statuses) {
        let pids: Vec<i32> = match &status {
            state::Status::Running(state) => {
                let mut pids = vec![state.pid as i32];
                if let Some(ns) = state.user_ns {
                    pids.extend(
                        members::in_user_namespaces(&[ns])
                            .into_iter()
                            .map(|(_, p)| p),
                    );
                }
                pids.sort_unstable();
                pids.dedup();
                pids
            }
            state::Status::Orphaned { members, .. } => members.iter().map(|m| m.pid).collect(),
            state::Status::Stopped { .. } => Vec::new(),
        };
        let (mut cpu, mut resident, mut alive) = (0u64, 0u64, 0usize);
        for pid in pids {
            if let Some((ticks, pages)) = crate::sys::proc::usage(pid) {
                cpu += ticks;
                resident += pages;
                alive += 1;
            }
        }
        let running_for = match status {
            state::Status::Stopped { .. } => 0,
            _ => state::started_at(&store, name).map_or(0, |at| now.saturating_sub(at)),
        };
        out.push(Usage {
            name: (*name).to_owned(),
            pids: alive,
            cpu_seconds: cpu as f64 / ticks,
            memory: resident * page,
            memory_total,
            running_for,
        });
    }
    Ok(out)
}

/// The host's memory in bytes (`MemTotal` of /proc/meminfo), 0 when unknown.
fn memory_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let kib = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_over_the_life_or_the_interval() {
        let usage = Usage {
            name: "dev".into(),
            pids: 2,
            cpu_seconds: 30.0,
            memory: 512,
            memory_total: 2048,
            running_for: 60,
        };
        assert_eq!(usage.cpu_percent(None), 50.0);
        let before = Usage {
            cpu_seconds: 29.0,
            ..usage.clone()
        };
        assert_eq!(usage.cpu_percent(Some((&before, 2.0))), 50.0);
        assert_eq!(usage.memory_percent(), 25.0);
        assert!(memory_total() > 0);
    }
}
