//! CPU time and memory of a process or thread, from Linux's `/proc`: what the load benchmarks
//! and the agent-footprint benchmark measure the coordinator and the agent by.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// USER_HZ: the clock ticks per second of `/proc/*/stat` (100 on every Linux architecture the
/// benchmarks run on).
const TICKS_PER_SEC: u64 = 100;

/// `/proc/PID/stat`.
pub fn stat_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/stat"))
}

/// `/proc/PID/status`.
pub fn status_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/status"))
}

/// User + system CPU time from a `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) file.
pub fn cpu_time(stat: &Path) -> io::Result<Duration> {
    let text = std::fs::read_to_string(stat)?;
    parse_cpu_time(&text).ok_or_else(|| malformed(stat))
}

/// Resident memory now and at its peak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

/// `VmRSS` and `VmHWM` from a `/proc/PID/status` file.
pub fn memory(status: &Path) -> io::Result<Memory> {
    let text = std::fs::read_to_string(status)?;
    parse_memory(&text).ok_or_else(|| malformed(status))
}

/// CPU time of this process's threads whose name (`comm`) is one of `names`. A thread that
/// ends while they are read counts for nothing.
pub fn threads_cpu_time(names: &[&str]) -> Duration {
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    threads
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|comm| names.contains(&comm.trim()))
        })
        .filter_map(|t| cpu_time(&t.path().join("stat")).ok())
        .sum()
}

fn malformed(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} does not read as the kernel writes it", path.display()),
    )
}

fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses; the fields after its last
    // ')' are plain: state is field 3, utime field 14 and stime field 15.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let total = ticks(11)? + ticks(12)?;
    Some(Duration::from_millis(total * 1000 / TICKS_PER_SEC))
}

fn parse_memory(status: &str) -> Option<Memory> {
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    Some(Memory {
        rss_bytes: kib("VmRSS:")? * 1024,
        peak_rss_bytes: kib("VmHWM:")? * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system_time_whatever_the_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194304 120 0 0 0 250 37 0 0 20 0 \
                    3 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_time(line), Some(Duration::from_millis(2_870)));
        assert_eq!(parse_cpu_time("4242 (short) S 1 2"), None);
        assert_eq!(parse_cpu_time("no name at all"), None);
    }

    #[test]
    fn status_files_give_rss_and_its_peak() {
        let text = "Name:\tproofrack\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t4\n";
        assert_eq!(
            parse_memory(text),
            Some(Memory {
                rss_bytes: 10 << 20,
                peak_rss_bytes: 20 << 20
            })
        );
        assert_eq!(parse_memory("Name:\tkworker\n"), None);
    }

    #[test]
    fn this_process_reads_back() {
        let pid = std::process::id();
        let m = memory(&status_path(pid)).unwrap();
        assert!(m.rss_bytes > 0 && m.peak_rss_bytes >= m.rss_bytes, "{m:?}");
        cpu_time(&stat_path(pid)).unwrap();
        assert!(cpu_time(Path::new("/proc/self/no-such-file")).is_err());
    }
}
