//! Resident set size of a process, from `/proc/<pid>/status`.

use anyhow::{anyhow, Context};

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    read_vm_rss(&format!("/proc/{pid}/status"))
}

/// `VmRSS` of this process in KiB.
pub fn own_rss_kib() -> anyhow::Result<u64> {
    read_vm_rss("/proc/self/status")
}

/// Parses the `VmRSS:   1234 kB` line of a status file.
fn read_vm_rss(path: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}
