//! What the harness reads about its own process and machine on Linux: resident set size now
//! (`VmRSS`) and at its peak (`VmHWM`) from `/proc/self/status`, resetting the peak through
//! `/proc/self/clear_refs`, the load average, and — before a memory baseline — handing freed
//! heap back to the OS (`malloc_trim`, glibc only) so that a later RSS delta is not absorbed
//! by memory an earlier phase freed. Elsewhere every reading is `None`.

use serde::{Deserialize, Serialize};

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_field(&status, name)
}

fn parse_status_field(status: &str, name: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Resident set size now.
pub fn rss_bytes() -> Option<u64> {
    status_field("VmRSS")
}

/// Peak resident set size (since start or the last [`reset_peak_rss`]).
pub fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM")
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0); `false` when not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Returns freed heap pages to the OS where the allocator supports it (glibc).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks the allocator's own free lists; it has no
    // preconditions and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Cores available to the process.
    pub cpus: usize,
    /// 1, 5 and 15 minute load averages at the start of the run (`/proc/loadavg`).
    pub load_average_start: Option<[f64; 3]>,
    /// The same at the end of the run.
    pub load_average_end: Option<[f64; 3]>,
    /// The soft limit on open files.
    pub open_files_limit: Option<u64>,
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_loadavg(&text)
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// The soft `RLIMIT_NOFILE`.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl MachineInfo {
    /// Readings at the start of a run.
    pub fn now() -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            load_average_start: load_average(),
            load_average_end: None,
            open_files_limit: open_files_limit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse_to_bytes() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t    1000 kB\nVmRSSx:\t1 kB\n";
        assert_eq!(parse_status_field(s, "VmRSS"), Some(1_024_000));
        assert_eq!(parse_status_field(s, "VmHWM"), Some(2_097_152));
        assert_eq!(parse_status_field(s, "VmSwap"), None);
        assert_eq!(parse_status_field("VmRSS:\tlots kB", "VmRSS"), None);
    }

    #[test]
    fn loadavg_parses_three_numbers() {
        assert_eq!(
            parse_loadavg("2.22 2.47 2.33 4/156 14802\n"),
            Some([2.22, 2.47, 2.33])
        );
        assert_eq!(parse_loadavg("2.22"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set() {
        let rss = rss_bytes().unwrap();
        assert!(rss > 0);
        assert!(
            peak_rss_bytes().unwrap() >= rss,
            "the peak is a running maximum"
        );
    }
}
